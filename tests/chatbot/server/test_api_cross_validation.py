"""Rasa's ``POST /model/test/intents?cross_validation_folds=N``: the body's NLU data
cross-validated with the body's config, in a process of its own, whatever model is served."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from chatbot.project.nlu_reader import read_nlu
from tests.chatbot.server.callbacks import Callback
from tests.chatbot.server.support import StartServer
from tests.helpers import DOMAINS

YAML = {"Content-Type": "application/yaml"}
NLU = DOMAINS / "moodbot" / "data" / "nlu.yml"
FAST = "pipeline:\n- name: WhitespaceTokenizer\n- name: DIETClassifier\n  epochs: 5\n"


@pytest.fixture
async def client(start_server: StartServer, moodbot_model: TrainedModel) -> TestClient:
    # The served model has no NLU: cross-validation trains its own from the body.
    return await start_server(Agent(moodbot_model), enable_api=True, rate_limit=None)


async def test_the_bodys_data_is_cross_validated_with_its_config(client: TestClient) -> None:
    examples = len(read_nlu(NLU).examples)
    body = FAST + NLU.read_text()
    response = await client.post(
        "/model/test/intents?cross_validation_folds=2", data=body, headers=YAML
    )
    assert response.status == 200, await response.text()
    result = await response.json()
    intents = result["intent_evaluation"]
    assert intents["report"]["weighted avg"]["support"] == examples  # every example held out once
    assert 0.0 <= intents["accuracy"] <= 1.0 and intents["f1_score"] is not None
    assert isinstance(intents["errors"], list)
    folds = result["cross_validation"]
    assert folds["folds"] == 2 and sum(f["examples"] for f in folds["fold_summaries"]) == examples
    assert "entity_evaluation" in result and "response_selection_evaluation" in result
    status = await client.get("/status")
    assert (await status.json())["num_active_training_jobs"] == 0


async def test_a_mistake_in_the_config_or_the_data_names_the_bodys_line(
    client: TestClient, callback: tuple[Callback, str]
) -> None:
    bad_config = "pipeline:\n- name: NoSuchClassifier\n" + NLU.read_text()
    response = await client.post(
        "/model/test/intents?cross_validation_folds=2", data=bad_config, headers=YAML
    )
    assert response.status == 400
    message = (await response.json())["message"]
    assert "the body's config:2" in message and "NoSuchClassifier" in message
    assert "chatbot-cv-" not in message

    # Through a callback_url the same mistake is posted there, in Rasa's error shape.
    fake, url = callback
    bad_data = FAST + "nlu:\n- intent: greet\n  examples: |\n    - hi\n- intnt: x\n"
    response = await client.post(
        f"/model/test/intents?cross_validation_folds=2&callback_url={url}",
        data=bad_data,
        headers=YAML,
    )
    assert response.status == 204
    _, posted = await fake.wait()
    error = json.loads(posted)
    assert error["code"] == 400 and "the body's data:9" in error["message"]


@pytest.mark.parametrize(
    ("query", "body", "headers", "message"),
    [
        ("1", FAST + NLU.read_text(), YAML, "a whole number from 2"),
        ("two", FAST + NLU.read_text(), YAML, "a whole number from 2"),
        ("%C2%B2", FAST + NLU.read_text(), YAML, "a whole number from 2"),  # "²"
        ("9" * 5000, FAST + NLU.read_text(), YAML, "a whole number from 2"),
        ("2", json.dumps({"rasa_nlu_data": {}}), {"Content-Type": "application/json"}, "not JSON"),
        ("2", FAST, YAML, "no NLU examples"),
        ("2", "nlu: [unclosed\n", YAML, "the body:2: YAML syntax error"),
        ("500", FAST + NLU.read_text(), YAML, "cannot be split into 500 folds"),
    ],
)
async def test_bad_requests_are_a_400_that_says_what(
    client: TestClient, query: str, body: str, headers: dict[str, str], message: str
) -> None:
    response = await client.post(
        f"/model/test/intents?cross_validation_folds={query}", data=body, headers=headers
    )
    assert response.status == 400
    assert message in (await response.json())["message"]
