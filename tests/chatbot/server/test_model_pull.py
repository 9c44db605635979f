"""The served model pulled from a model server (endpoints.yml ``models:``): a real aiohttp model
server on 127.0.0.1 that speaks Rasa's protocol (ETag, If-None-Match, 304, the token as a query
parameter) and two real models that greet differently."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatbot.errors import ConfigError
from chatbot.server.app import resolve_settings
from chatbot.server.model_pull import DEFAULT_WAIT
from chatbot.server.settings import ServerSettings
from tests.chatbot.server.model_servers import TOKEN, Bot, ModelServer, block
from tests.helpers import free_port


async def test_startup_pulls_then_the_bot_follows_the_servers_model(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await model_server()
    server.serve("v1", models["v1"])
    caplog.set_level(logging.DEBUG, logger="chatbot")
    # The server's model is preferred to the project's own (as in Rasa).
    bot = await start_bot(block(server.url), local=models["v2"])

    assert len(bot.loads) == 1  # pulled before the first request was accepted
    assert await bot.greeting() == "Hello from v1!"
    status = await (await bot.client.get("/status")).json()
    assert status["model_file"] == server.url  # the URL, without the token
    assert server.tokens[0] == TOKEN and server.if_none_match[0] is None

    # While the server's model stays, each pull is a 304 and nothing is loaded again.
    await bot.pulls(3)
    assert server.not_modified >= 3 and set(server.if_none_match[1:]) == {'"v1"'}
    assert len(bot.loads) == 1

    server.serve("v2", models["v2"])
    await bot.pulls(2)
    assert await bot.greeting() == "Hello from v2!"
    assert len(bot.loads) == 2
    await bot.pulls(2)
    assert len(bot.loads) == 2 and server.if_none_match[-1] == '"v2"'
    # The conversation went on across the swap.
    tracker = await (await bot.client.get("/conversations/ann/tracker")).json()
    assert [e["event"] for e in tracker["events"]].count("user") == 2
    assert set(server.tokens) == {TOKEN}
    assert TOKEN not in caplog.text
    counts = await bot.pull_counts()
    assert counts["new_model"] == 2 and counts["unchanged"] >= 4
    assert counts.get("failed", 0) == 0


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        ("500", "answered 500"),
        ("404", "has no model at this URL (404)"),
        ("garbage", "sent a file that is not a valid model (the downloaded file: not a chatbot"),
        ("inconsistent", "not a valid model (the downloaded file: the model's content is invalid"),
        ("hang", "gave no model within 1.5 s"),
    ],
)
async def test_a_bad_answer_keeps_the_served_model_and_says_why_once(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
    fault: str,
    logged: str,
) -> None:
    server = await model_server()
    server.serve("v1", models["v1"])
    # A short timeout only where the fault needs it: a loaded machine can take a second to
    # answer even a well server (the first pull, at startup, has the same timeout).
    timeout = 1.5 if fault == "hang" else 10
    bot = await start_bot(block(server.url, extra=f"  timeout: {timeout}\n"))
    assert await bot.greeting() == "Hello from v1!"

    caplog.set_level(logging.WARNING, logger="chatbot")
    server.fault = fault
    await bot.pulls(3)
    assert await bot.greeting() == "Hello from v1!"
    assert len(bot.loads) == 1
    warnings = [r.getMessage() for r in caplog.records if logged in r.getMessage()]
    assert len(warnings) == 1, caplog.text  # once, not at every pull
    assert "the model being served stays" in warnings[0]
    assert TOKEN not in caplog.text
    assert (await bot.pull_counts())["failed"] >= 3

    # The server is well again, with a new model: it is served.
    server.release.set()
    server.serve("v2", models["v2"])
    await bot.pulls(3)
    assert await bot.greeting() == "Hello from v2!"
    assert len(bot.loads) == 2


async def test_a_server_without_etags_changes_the_model_only_when_the_file_changes(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    server = await model_server()
    server.body = models["v1"]  # no ETag: every pull is a 200 with the whole file
    bot = await start_bot(block(server.url))
    await bot.pulls(3)
    assert server.if_none_match == [None] * len(server.if_none_match)
    assert len(bot.loads) == 1 and await bot.greeting() == "Hello from v1!"

    server.body = models["v2"]
    await bot.pulls(2)
    assert len(bot.loads) == 2 and await bot.greeting() == "Hello from v2!"


async def test_server_down_at_startup_the_local_model_serves_until_it_answers(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/models/default"
    caplog.set_level(logging.WARNING, logger="chatbot")
    bot = await start_bot(block(url), local=models["v1"])

    assert await bot.greeting() == "Hello from v1!"
    assert not bot.loads
    assert f"model server {url} cannot be reached" in caplog.text
    assert "the model being served stays" in caplog.text

    server = await model_server(port)
    server.serve("v2", models["v2"])
    await bot.pulls(2)
    assert await bot.greeting() == "Hello from v2!"


async def test_no_model_anywhere_the_server_starts_without_one(
    start_bot: Callable[..., Awaitable[Bot]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="chatbot")
    url = f"http://127.0.0.1:{free_port()}/models/default"
    bot = await start_bot(block(url, wait="null"))

    assert (await bot.client.get("/status")).status == 409
    webhook = await bot.client.post(
        "/webhooks/rest/webhook", json={"sender": "ann", "message": "/greet"}
    )
    assert webhook.status == 503
    assert "no model is served until the model server" in caplog.text
    assert bot.puller.pulls == 1 and bot.puller._task is None  # null: no pulls after startup


async def test_a_wrong_token_is_refused_and_not_logged(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await model_server()
    server.serve("v1", models["v1"])
    caplog.set_level(logging.DEBUG, logger="chatbot")
    bot = await start_bot(block(server.url, token="wrong-token-value", wait="null"))

    assert server.tokens == ["wrong-token-value"]
    assert (await bot.client.get("/status")).status == 409
    assert "refused the request (401): check the token" in caplog.text
    assert "wrong-token-value" not in caplog.text


async def test_shutdown_stops_the_pulls(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    server = await model_server()
    server.serve("v1", models["v1"])
    bot = await start_bot(block(server.url))
    task = bot.puller._task
    assert task is not None and not task.done()

    await bot.client.close()
    assert task.done() and task.cancelled()
    assert bot.puller._task is None and bot.puller._session is None


@pytest.mark.parametrize(
    ("models_block", "line", "words"),
    [
        ("  token: x\n", 3, "models needs 'url'"),
        ("  url: ftp://host/models\n", 3, "models needs 'url'"),
        ("  url: http://x/m\n  wait_time_between_pulls: -1\n", 3, "'wait_time_between_pulls'"),
        ("  url: http://x/m\n  wait_time_between_pulls: soon\n", 3, "'wait_time_between_pulls'"),
        ("  url: http://x/m\n  wait_time_between_pulls: true\n", 3, "'wait_time_between_pulls'"),
        ("  url: http://x/m\n  timeout: 0\n", 3, "'timeout'"),
        ("  url: http://x/m\n  headers: [a]\n", 3, "'headers'"),
        ("  url: http://x/m\n  basic_auth: {username: a}\n", 3, "'basic_auth'"),
    ],
)
def test_config_errors_name_the_file_line_and_key(
    tmp_path: Path, models_block: str, line: int, words: str
) -> None:
    (tmp_path / "endpoints.yml").write_text(
        "tracker_store:\n  type: in_memory\nmodels:\n" + models_block
    )
    with pytest.raises(ConfigError) as caught:
        resolve_settings(ServerSettings(project_dir=tmp_path))
    message = str(caught.value)
    assert f"endpoints.yml:{line}: " in message and words in message


@pytest.mark.parametrize(
    ("setting", "seconds"),
    [("", DEFAULT_WAIT), ("null", None), ("0", None), ("2.5", 2.5), ("'10'", 10.0)],
)
def test_wait_time_between_pulls(tmp_path: Path, setting: str, seconds: float | None) -> None:
    """Absent: Rasa's 100 s; null or 0: at startup only; a string (from ${ENV}) as a number."""
    wait = f"  wait_time_between_pulls: {setting}\n" if setting else ""
    (tmp_path / "endpoints.yml").write_text(
        f"models:\n  url: http://x/m?api_key=k3y-in-url\n  token: t0ken\n{wait}"
    )
    server = resolve_settings(ServerSettings(project_dir=tmp_path)).model_server
    assert server is not None and server.wait_time_between_pulls == seconds
    assert server.params == {"token": "t0ken"}
    assert server.describe() == "http://x/m"
    assert server.redact("GET http://x/m?api_key=k3y-in-url&token=t0ken") == (
        "GET http://x/m?api_key=***&token=***"
    )
    assert "t0ken" not in repr(server)


async def test_a_model_put_through_the_api_serves_until_the_server_has_a_new_one(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    server = await model_server()
    server.serve("v1", models["v1"])
    bot = await start_bot(block(server.url))
    assert await bot.greeting() == "Hello from v1!"

    put = await bot.client.put(
        "/model", data=models["v2"], headers={"Content-Type": "application/octet-stream"}
    )
    assert put.status == 204, await put.text()
    await bot.pulls(3)  # 304s: the server's model has not changed
    assert await bot.greeting() == "Hello from v2!"
    assert server.not_modified >= 2

    # The server publishes again, under a new ETag, the very file it served before: loaded.
    server.serve("v1-again", models["v1"])
    await bot.pulls(3)
    assert await bot.greeting() == "Hello from v1!"
    assert len(bot.loads) == 3  # v1 pulled, v2 put, v1 pulled again

    unloaded = await bot.client.delete("/model")
    assert unloaded.status == 204
    await bot.pulls(2)
    assert (await bot.client.get("/status")).status == 409  # stays unloaded: nothing new
    server.serve("v2-new", models["v2"])
    await bot.pulls(3)
    assert await bot.greeting() == "Hello from v2!"
