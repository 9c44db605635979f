"""Rasa's ``POST /model/test/intents`` and ``POST /model/test/stories``: the served model scored
on the test data in the request."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from tests.chatbot.server.support import StartServer
from tests.helpers import DOMAINS, example_project

YAML = {"Content-Type": "application/yaml"}
MOODBOT = DOMAINS / "moodbot"


@pytest.fixture(scope="module")
def moodbot_with_nlu() -> TrainedModel:
    from training.train import train_project

    return train_project(example_project("moodbot", nlu=True), show_progress=False)


@pytest.fixture
async def client(start_server: StartServer, moodbot_with_nlu: TrainedModel) -> TestClient:
    return await start_server(Agent(moodbot_with_nlu), enable_api=True, rate_limit=None)


async def test_intents_are_scored_in_rasas_shape(client: TestClient) -> None:
    body = (MOODBOT / "data" / "nlu.yml").read_text()
    response = await client.post("/model/test/intents", data=body, headers=YAML)
    assert response.status == 200, await response.text()
    result = await response.json()
    intents = result["intent_evaluation"]
    assert intents["accuracy"] >= 0.9  # its own training examples
    assert set(intents["report"]) >= {"greet", "goodbye", "accuracy", "weighted avg"}
    first = intents["predictions"][0]
    assert set(first) == {"text", "intent", "predicted", "confidence"}
    assert len(intents["predictions"]) == intents["report"]["weighted avg"]["support"]
    assert isinstance(intents["errors"], list) and "entity_evaluation" in result

    wrong = "nlu:\n- intent: greet\n  examples: |\n    - I am very sad today\n"
    result = await (await client.post("/model/test/intents", data=wrong, headers=YAML)).json()
    assert result["intent_evaluation"]["accuracy"] == 0.0
    (error,) = result["intent_evaluation"]["errors"]
    assert error["text"] == "I am very sad today" and error["intent"] == "greet"


async def test_stories_are_scored_as_chatbot_test_scores_them(client: TestClient) -> None:
    body = (MOODBOT / "tests" / "test_stories.yml").read_text()
    response = await client.post("/model/test/stories", data=body, headers=YAML)
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["conversation_accuracy"] == 1.0 and result["accuracy"] == 1.0
    assert result["report"]["conversation_accuracy"]["total"] >= 1
    assert "utter_greet" in result["report"]

    failing = (
        "stories:\n- story: wrong\n  steps:\n  - user: hello\n    intent: greet\n"
        "  - action: utter_goodbye\n"
    )
    result = await (await client.post("/model/test/stories", data=failing, headers=YAML)).json()
    assert result["conversation_accuracy"] == 0.0
    assert "# predicted: utter_greet" in result["failed_stories"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        ("/model/test/intents", "nlu: [", YAML, 400, "the body"),
        ("/model/test/intents", "nlu: []\n", YAML, 400, "no NLU examples"),
        ("/model/test/stories", "stories: []\n", YAML, 400, "no test stories"),
        (
            "/model/test/stories",
            "stories:\n- story: x\n  steps:\n  - intnt: greet\n",
            YAML,
            400,
            "the body:4",
        ),
        ("/model/test/intents", "{}", {"Content-Type": "application/json"}, 400, "rasa_nlu_data"),
        ("/model/test/stories", "{}", {"Content-Type": "application/json"}, 415, "YAML"),
        ("/model/test/intents?cross_validation_folds=2", "x", YAML, 400, "no NLU examples"),
        ("/model/test/intents?callback_url=file:///x", "x", YAML, 400, "an http or https URL"),
        ("/model/test/stories?model=models/other.model", "x", YAML, 400, "no model file at"),
        ("/model/test/intents?model=http://127.0.0.1:9/m", "x", YAML, 400, "give a file's path"),
    ],
)
async def test_mistakes_in_the_body_are_a_400_naming_the_line(
    client: TestClient, path: str, body: str, headers: dict[str, str], status: int, message: str
) -> None:
    response = await client.post(path, data=body, headers=headers)
    assert response.status == status
    text = (await response.json())["message"]
    assert message in text and "chatbot-test-" not in text


async def test_a_model_without_nlu_says_so(
    start_server: StartServer, moodbot_model: TrainedModel
) -> None:
    client = await start_server(Agent(moodbot_model), enable_api=True, rate_limit=None)
    body = (MOODBOT / "data" / "nlu.yml").read_text()
    response = await client.post("/model/test/intents", data=body, headers=YAML)
    assert response.status == 409


async def test_another_model_file_is_tested_where_model_names_it(
    start_server: StartServer,
    moodbot_model: TrainedModel,
    moodbot_with_nlu: TrainedModel,
    tmp_path: Path,
) -> None:
    """Rasa's ``?model=``: a model file on the server is tested; the served model stays."""
    client = await start_server(Agent(moodbot_model), enable_api=True, rate_limit=None)
    other = tmp_path / "with-nlu.model"
    moodbot_with_nlu.to_file(other)
    body = (MOODBOT / "data" / "nlu.yml").read_text()
    response = await client.post("/model/test/intents", params={"model": str(other)}, data=body)
    assert response.status == 200, await response.text()
    assert (await response.json())["intent_evaluation"]["accuracy"] >= 0.9
    stories = (MOODBOT / "tests" / "test_stories.yml").read_text()
    response = await client.post("/model/test/stories", params={"model": str(other)}, data=stories)
    assert response.status == 200 and (await response.json())["conversation_accuracy"] == 1.0
    # The served model is still the one without NLU.
    assert (await client.post("/model/test/intents", data=body)).status == 409
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    response = await client.post("/model/test/intents", params={"model": str(garbage)}, data=body)
    assert response.status == 400 and (await response.json())["reason"] == "BadModel"


async def test_the_body_is_read_whatever_its_content_type_says_as_rasa_reads_it(
    client: TestClient,
) -> None:
    """Rasa reads these bodies as YAML without looking at the Content-Type (a Python client
    posting a string sends none), and an NLU body sent as JSON as Rasa's NLU JSON."""
    stories = (MOODBOT / "tests" / "test_stories.yml").read_text()
    for headers in ({}, {"Content-Type": "text/plain"}):
        response = await client.post("/model/test/stories", data=stories.encode(), headers=headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["conversation_accuracy"] == 1.0
    examples = [
        {"text": "hello there", "intent": "greet", "entities": []},
        {"text": "I am very sad today", "intent": "greet", "entities": []},
    ]
    response = await client.post(
        "/model/test/intents", json={"rasa_nlu_data": {"common_examples": examples}}
    )
    assert response.status == 200, await response.text()
    result = await response.json()
    assert [p["text"] for p in result["intent_evaluation"]["predictions"]] == [
        "hello there",
        "I am very sad today",
    ]
    assert result["intent_evaluation"]["accuracy"] == 0.5
    assert result["response_selection_evaluation"] is None  # Rasa's key, no retrieval intents


async def test_stories_end_to_end_where_asked(client: TestClient) -> None:
    """Rasa's ``?e2e=true``: a user text the NLU reads otherwise fails its story."""
    story = (
        "stories:\n- story: a farewell written as a greeting\n  steps:\n"
        "  - user: goodbye, see you later\n    intent: greet\n  - action: utter_greet\n"
    )
    plain = await (await client.post("/model/test/stories", data=story, headers=YAML)).json()
    assert plain["conversation_accuracy"] == 1.0
    e2e = await (await client.post("/model/test/stories?e2e=true", data=story, headers=YAML)).json()
    assert e2e["conversation_accuracy"] == 0.0
    assert "# predicted: goodbye: goodbye, see you later" in e2e["failed_stories"]
