"""What the REST channel hands out for each kind of bot message, as Rasa's
``CollectingOutputChannel`` does: paragraphs, buttons without a text, quick replies, elements,
channel variations (the REST channel's output channel is Rasa's ``collector``)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatbot.agent import Agent, TrainedModel
from chatbot.server import create_app
from tests.helpers import RULES_ONLY, train_files

RESPONSES = {
    "paragraphs": '[{text: "  first part\\n\\nsecond part\\n"}]',
    "buttons_alone": '[{buttons: [{title: "Only {city}", payload: "/x"}]}]',
    "empty": '[{text: ""}]',
    "quick": '[{text: "Pick", quick_replies: [{title: "A", payload: "/a"}]}]',
    "elements": '[{elements: [{title: "T", subtitle: "S", buttons: [{title: "B", payload: "/b"}]},'
    ' {title: "U", subtitle: "V"}]}]',
    "by_channel": '[{text: "for REST", channel: rest}, {text: "for collectors", channel: collector},'
    " {text: plain}]",
}


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    names = list(RESPONSES)
    domain = "\n".join(
        [
            'version: "3.1"',
            f"intents: [{', '.join(names)}]",
            "slots:",
            "  city: {type: text, initial_value: Rome, mappings: []}",
            "responses:",
            *(f"  utter_{name}: {variations}" for name, variations in RESPONSES.items()),
        ]
    )
    rules = "\n".join(
        ['version: "3.1"', "rules:"]
        + [
            f"- rule: {name}\n  steps:\n  - intent: {name}\n  - action: utter_{name}"
            for name in names
        ]
    )
    return train_files(
        tmp_path_factory.mktemp("shapes"),
        {"domain.yml": domain, "data/rules.yml": rules, "config.yml": RULES_ONLY},
    )


async def answer(model: TrainedModel, intent: str) -> list[dict[str, Any]]:
    async with TestClient(TestServer(create_app(Agent(model)))) as client:
        response = await client.post(
            "/webhooks/rest/webhook", json={"sender": "ann", "message": f"/{intent}"}
        )
        assert response.status == 200, await response.text()
        messages: list[dict[str, Any]] = await response.json()
        return messages


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        ("paragraphs", [{"text": "first part"}, {"text": "second part"}]),
        ("buttons_alone", [{"buttons": [{"title": "Only Rome", "payload": "/x"}]}]),
        ("empty", []),
        ("quick", [{"text": "Pick", "buttons": [{"title": "A", "payload": "/a"}]}]),
        (
            "elements",
            [
                {"text": "T : S", "buttons": [{"title": "B", "payload": "/b"}]},
                {"text": "U : V", "buttons": []},
            ],
        ),
        ("by_channel", [{"text": "for collectors"}]),
    ],
)
async def test_rest_messages_are_rasas_collected_messages(
    shapes_model: TrainedModel, intent: str, expected: list[dict[str, Any]]
) -> None:
    messages = await answer(shapes_model, intent)
    assert messages == [{"recipient_id": "ann", **m} for m in expected]
