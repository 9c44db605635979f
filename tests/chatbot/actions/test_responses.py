"""Response actions: what the retrieval action says when the NLU's selection has no response."""

from __future__ import annotations

import logging

import pytest

from chatbot.actions.base import ActionContext
from chatbot.actions.registry import ActionRegistry
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import ParseData
from tests.helpers import domain_of

# The travel-assistant project's mismatch: NLU examples of ``faq/travel_insurance``, responses
# named ``utter_faq/ask_travel_insurance``.
DOMAIN = """\
version: "3.1"
intents: [faq]
responses:
  utter_faq/ask_travel_insurance:
    - text: Yes, we sell travel insurance.
  utter_faq/ask_visa:
    - text: Ask the embassy.
"""


def _selected(key: str) -> ParseData:
    """What the NLU gives when the ResponseSelector of ``faq`` picks ``key``."""
    return {
        "intent": {"name": "faq", "confidence": 0.9},
        "response_selector": {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {
                    "intent_response_key": key,
                    "confidence": 0.8,
                    "utter_action": f"utter_{key}",
                },
                "ranking": [],
            },
        },
    }


async def _run_utter_faq(key: str) -> list[ev.Event]:
    domain = domain_of(DOMAIN)
    conversation = Conversation("ann", domain)
    conversation.append(ev.user("do you sell insurance", _selected(key)))
    action = ActionRegistry(domain).get("utter_faq")
    return await action.run(ActionContext(conversation, domain, "collector"))


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("faq/travel_insurance", "Did you mean 'utter_faq/ask_travel_insurance'?"),
        (
            "faq/opening_hours",
            "Responses of faq: utter_faq/ask_travel_insurance, utter_faq/ask_visa",
        ),
    ],
)
async def test_a_selected_retrieval_intent_without_its_response_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture, key: str, hint: str
) -> None:
    """The bot says nothing, as Rasa's ActionRetrieveResponse, which logs "Couldn't create
    message for response 'utter_faq/travel_insurance'"; ours says so too, at WARNING, and
    what the responses of ``faq`` are."""
    with caplog.at_level(logging.WARNING):
        assert await _run_utter_faq(key) == []
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning == (
        f"retrieval action utter_faq: response utter_{key} is not in the domain and no NLG "
        f"server (endpoints.yml nlg:) words it; nothing sent. {hint}"
    )


async def test_a_selected_retrieval_intent_with_its_response_says_it_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        events = await _run_utter_faq("faq/ask_visa")
    assert [e["text"] for e in events] == ["Ask the embassy."]
    assert caplog.records == []
