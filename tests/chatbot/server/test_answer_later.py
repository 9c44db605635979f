"""Rasa's ``callback_url`` on ``POST /model/train`` and ``POST /model/test/intents``: a 204 at
once, the answer (or the work's error) POSTed to the URL when the work ends; deliveries retried,
works cancelled at shutdown, their URLs told so."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent
from chatbot.server import answer_later
from chatbot.server.answer_later import LaterAnswers
from chatbot.server.errors import json_error
from tests.chatbot.server.callbacks import Callback
from tests.chatbot.server.support import StartServer
from tests.chatbot.server.test_api_train import TOKEN, YAML, moodbot_body
from tests.connectors.servers import serve
from tests.helpers import DOMAINS, example_project


async def test_a_training_answers_at_once_and_posts_the_model_when_done(
    train_api: TestClient, callback: tuple[Callback, str], tmp_path: Path
) -> None:
    fake, url = callback
    response = await train_api.post(
        f"/model/train?callback_url={url}", data=moodbot_body(), headers=YAML
    )
    assert response.status == 204, await response.text()
    assert fake.posts == []  # the training goes on after the answer
    status = await train_api.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (await status.json())["num_active_training_jobs"] == 1
    headers, model = await fake.wait()
    assert headers["Content-Type"] == "application/octet-stream"
    name = headers["filename"]
    assert name.endswith(".model") and (tmp_path / "models" / name).read_bytes() == model
    put = await train_api.put(
        "/model", data=io.BytesIO(model), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert put.status == 204, await put.text()  # the posted model is a model the server serves
    status = await train_api.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (await status.json())["num_active_training_jobs"] == 0


async def test_a_training_error_is_posted_in_rasas_error_shape(
    train_api: TestClient, callback: tuple[Callback, str]
) -> None:
    fake, url = callback
    body = moodbot_body(stories=[{"story": "odd", "steps": [{"intent": "teleport"}]}])
    response = await train_api.post(f"/model/train?callback_url={url}", data=body, headers=YAML)
    assert response.status == 204, await response.text()
    headers, posted = await fake.wait()
    assert headers["Content-Type"] == "application/json"
    error = json.loads(posted)
    assert error["status"] == "failure" and error["code"] == 400
    assert "teleport" in error["message"] and "the body's data" in error["message"]


async def test_an_evaluation_is_posted_when_asked(
    start_server: StartServer, callback: tuple[Callback, str]
) -> None:
    from training.train import train_project

    model = train_project(example_project("moodbot", nlu=True), show_progress=False)
    served = await start_server(Agent(model), enable_api=True, rate_limit=None)
    fake, url = callback
    body = (DOMAINS / "moodbot" / "data" / "nlu.yml").read_text()
    response = await served.post(f"/model/test/intents?callback_url={url}", data=body, headers=YAML)
    assert response.status == 204, await response.text()
    headers, posted = await fake.wait()
    assert headers["Content-Type"] == "application/json"
    result = json.loads(posted)
    assert result["intent_evaluation"]["accuracy"] >= 0.9
    # Without a callback_url, the same evaluation is the answer.
    direct = await served.post("/model/test/intents", data=body, headers=YAML)
    assert (await direct.json())["intent_evaluation"] == result["intent_evaluation"]


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "http://", "not a url", "//127.0.0.1/x"]
)
async def test_a_callback_url_that_is_no_http_url_is_a_400_before_anything_runs(
    train_api: TestClient, url: str, tmp_path: Path
) -> None:
    response = await train_api.post(
        "/model/train", params={"callback_url": url}, data=moodbot_body(), headers=YAML
    )
    assert response.status == 400
    assert "callback_url must be an http or https URL" in (await response.json())["message"]
    assert not (tmp_path / "models").exists()


async def test_shutdown_cancels_the_training_and_tells_the_callback(
    train_api: TestClient, callback: tuple[Callback, str], tmp_path: Path
) -> None:
    fake, url = callback
    response = await train_api.post(
        f"/model/train?callback_url={url}", data=moodbot_body(), headers=YAML
    )
    assert response.status == 204
    await train_api.close()  # the server shuts down while the training process starts
    _, posted = await fake.wait(10)
    error = json.loads(posted)
    assert error["code"] == 503 and "stopped before the training ended" in error["message"]
    assert not (tmp_path / "models").exists()  # no model from the killed training


async def test_too_many_waiting_answers_are_refused(
    train_api: TestClient, callback: tuple[Callback, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answer_later, "MAX_PENDING", 1)
    _, url = callback
    first = await train_api.post(
        f"/model/train?callback_url={url}", data=moodbot_body(), headers=YAML
    )
    assert first.status == 204
    second = await train_api.post(
        f"/model/train?callback_url={url}", data=moodbot_body(), headers=YAML
    )
    assert second.status == 503 and second.headers["Retry-After"]
    assert "still running" in (await second.json())["message"]


async def test_a_refused_delivery_is_tried_again_then_given_up_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    later = LaterAnswers()
    later.retry_delay = 0.01

    async def work() -> web.Response:
        return web.json_response({"done": True})

    flaky = Callback(refusals=(500, 503))
    async with serve(flaky.app) as served:
        later.start(f"{served.url}/done", work, "evaluation")
        _, body = await flaky.wait(10)
    assert len(flaky.posts) == 3 and body == b'{"done": true}'

    refusing = Callback(refusals=(500, 500, 500))
    async with serve(refusing.app) as served:
        with caplog.at_level(logging.ERROR, "chatbot.server.answer_later"):
            later.start(f"{served.url}/done", work, "evaluation")
            await asyncio.wait(set(later.tasks), timeout=10)
    assert len(refusing.posts) == 3
    (line,) = [r.getMessage() for r in caplog.records if "could not be posted" in r.getMessage()]
    assert f"{served.url}/done" in line and "3 attempt(s)" in line and "answered 500" in line


async def test_a_works_own_http_error_and_a_crash_are_posted_as_errors() -> None:
    later = LaterAnswers()

    async def refused() -> web.Response:
        raise json_error(409, "the served model has no NLU model to test", "NoNLUModel")

    async def crashed() -> web.Response:
        raise RuntimeError("disk on fire")

    for work, code, words in ((refused, 409, "no NLU model"), (crashed, 500, "disk on fire")):
        fake = Callback()
        async with serve(fake.app) as served:
            later.start(f"{served.url}/done", work, "evaluation")
            _, body = await fake.wait(10)
        error = json.loads(body)
        assert error["code"] == code and words in error["message"]
