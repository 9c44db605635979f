"""Rasa's ``POST /model/test/intents`` and ``POST /model/test/stories``: the served model scored
on the test data in the request."""

from __future__ import annotations

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
        ("/model/test/intents", "{}", {"Content-Type": "application/json"}, 415, "YAML"),
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
