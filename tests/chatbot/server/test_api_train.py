"""Rasa's ``POST /model/train``: a bot's config, domain and data in one YAML body, trained by
``chatbot train`` in a process of its own, the model file in the answer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient

from tests.chatbot.server.support import API_TOKEN
from tests.helpers import DOMAINS

TOKEN = API_TOKEN
YAML = {"Content-Type": "application/yaml", "Authorization": f"Bearer {TOKEN}"}


def moodbot_body(**changes: object) -> str:
    """moodbot's config, domain and data as Rasa's /model/train takes them, trained briefly."""
    bot = DOMAINS / "moodbot"
    body: dict[str, object] = {}
    for file in ("config.yml", "domain.yml", "data/nlu.yml", "data/stories.yml", "data/rules.yml"):
        path = bot / file
        if path.is_file():
            for key, value in (yaml.safe_load(path.read_text()) or {}).items():
                if key in body and isinstance(value, list):
                    body[key] = [*body[key], *value]  # type: ignore[misc]
                else:
                    body[key] = value
    for component in [*body["pipeline"], *body["policies"]]:  # type: ignore[misc]
        if "epochs" in component:
            component["epochs"] = 3
    body.update(changes)
    return yaml.safe_dump(body, sort_keys=False)


async def test_training_data_in_makes_a_model_out_that_put_model_serves(
    train_api: TestClient, tmp_path: Path
) -> None:
    response = await train_api.post("/model/train", data=moodbot_body(), headers=YAML)
    assert response.status == 200, await response.text()
    name = response.headers["filename"]
    assert name.endswith(".model")
    model = await response.read()
    assert (tmp_path / "models" / name).read_bytes() == model  # kept, as Rasa keeps it
    put = await train_api.put(
        "/model", data=io.BytesIO(model), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert put.status == 204, await put.text()
    answer = await train_api.post(
        "/webhooks/rest/webhook", json={"sender": "ann", "message": "/mood_great"}
    )
    assert answer.status == 200 and (await answer.json())[0]["text"]
    status = await train_api.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (await status.json())["num_active_training_jobs"] == 0


async def test_unchanged_parts_come_from_the_kept_models_unless_training_is_forced(
    train_api: TestClient, tmp_path: Path
) -> None:
    """As `chatbot train` does with its output folder: a part that nothing it is trained on
    changed for is taken from a model in the server's models/ folder (Rasa's training cache);
    ``force_training=true`` trains every part."""
    from chatbot import model_file

    def reused(model: bytes) -> dict[str, str]:
        meta, _ = model_file.loads(model)
        return meta.get("reused", {})

    first = await train_api.post("/model/train", data=moodbot_body(), headers=YAML)
    assert first.status == 200, await first.text()
    assert reused(await first.read()) == {}
    name = first.headers["filename"]
    stories = yaml.safe_load(moodbot_body())["stories"]
    stories.append({"story": "new", "steps": [{"intent": "affirm"}, {"action": "utter_happy"}]})
    second = await train_api.post("/model/train", data=moodbot_body(stories=stories), headers=YAML)
    assert second.status == 200, await second.text()
    assert reused(await second.read()) == {"nlu": name}
    forced = await train_api.post(
        "/model/train?force_training=true", data=moodbot_body(stories=stories), headers=YAML
    )
    assert forced.status == 200, await forced.text()
    assert reused(await forced.read()) == {}


async def test_a_model_not_kept_when_asked(train_api: TestClient, tmp_path: Path) -> None:
    response = await train_api.post(
        "/model/train?save_to_default_model_directory=false&augmentation=0&force_training=true",
        data=moodbot_body(),
        headers=YAML,
    )
    assert response.status == 200, await response.text()
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("body", "query", "status", "message"),
    [
        ("intents: [greet\n", "", 400, "the training data:2: YAML syntax error"),
        ("nlu: " + "[" * 5000 + "]" * 5000, "", 400, "exceeded maximum nesting depth"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdef", "bcdefg", strict=True)
            )
            + "nlu: *g\n",
            "",
            400,
            "the anchors and aliases of this document stand for",
        ),
        ("- a list\n", "", 400, "must be a YAML mapping"),
        ("language: " + "9" * 5000 + "\n", "", 400, "the training data:1: a number of 5000 digits"),
        ("intents: [greet]\n", "", 400, "has none of nlu, stories or rules"),
        (None, "?save_to_default_model_directory=maybe", 400, "must be true or false"),
        (None, "?augmentation=-1", 400, "must be a whole number"),
        (None, "?augmentation=%C2%B2", 400, "must be a whole number"),  # "²": int() refuses it
        (None, "?callback_url=ftp://x", 400, "callback_url must be an http or https URL"),
    ],
)
async def test_mistakes_in_the_request_are_a_400_that_says_what(
    train_api: TestClient, body: str | None, query: str, status: int, message: str
) -> None:
    response = await train_api.post(
        f"/model/train{query}", data=body if body is not None else moodbot_body(), headers=YAML
    )
    assert response.status == status
    assert message in (await response.json())["message"]


async def test_a_mistake_in_the_data_names_the_part_and_line(train_api: TestClient) -> None:
    stories = [{"story": "bad", "steps": [{"intent": "nope"}, {"action": "utter_greet"}]}]
    response = await train_api.post(
        "/model/train", data=moodbot_body(stories=stories), headers=YAML
    )
    assert response.status == 400
    body = await response.json()
    assert body["reason"] == "TrainingError"
    assert (
        "the body's data:" in body["message"]
        and "intent 'nope' is not in the domain" in (body["message"])
    )
    assert "chatbot-train-" not in body["message"]  # no temporary path


async def test_json_and_no_credentials_are_refused(train_api: TestClient) -> None:
    response = await train_api.post(
        "/model/train", json={"nlu": []}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 415  # Rasa 3 trains from YAML only
    # Read as YAML whatever else the Content-Type says (or none), as Rasa reads it.
    for content_type in ("text/plain", None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await train_api.post("/model/train", data=b"nlu: [", headers=headers)
        assert response.status == 400, await response.text()
    response = await train_api.post(
        "/model/train", data=moodbot_body(), headers={"Content-Type": "application/yaml"}
    )
    assert response.status == 401


def test_the_training_command_passes_augmentation_zero_too() -> None:
    from chatbot.server.api_train import train_command

    out = Path("/x/m.model")
    assert train_command("/p", out, 0)[-2:] == ["--augmentation", "0"]
    assert "--augmentation" not in train_command("/p", out, None)
    assert train_command("/p", out, None, reuse_from=Path("/m"))[-2:] == ["--reuse-from", "/m"]
    forced = train_command("/p", out, None, force=True, reuse_from=Path("/m"))
    assert "--force" in forced and "--reuse-from" not in forced
