"""An action server that answers anything that looks like events: every turn of the restaurant
bot is answered (or refused with a ``ChatbotError``), and what is stored can be read back, shown
as Rasa's tracker JSON (strict JSON: no NaN), written as a story and continued by a new agent.

The answers are built from every Rasa event type with values of any JSON type (and NaN, which
Python's rasa-sdk actions can return) in the keys the framework reads.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from chatbot.actions.base import ActionContext
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import REQUIRED_KEYS
from chatbot.conversation.messages import bot_messages
from chatbot.errors import ChatbotError
from chatbot.server.api import tracker_json
from chatbot.server.story import stories_yaml
from tests.helpers import dialogue_model
from tests.mutations import fuzz

TEXTS = [
    "/greet",
    '/request_restaurant{"cuisine": "thai"}',
    '/inform{"number": "3"}',
    "/affirm",
    "/deny",
    "/stop",
    "hello there",
]
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf]),  # what JSON lacks, more often than floats()
    st.text(max_size=8),
    st.lists(st.integers() | st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers() | st.none(), max_size=2),
)


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return dialogue_model("restaurant")


def events_of(model: TrainedModel) -> st.SearchStrategy[dict[str, Any]]:
    domain = model.domain
    names = st.sampled_from(sorted({*domain.action_names, *domain.slots, "nope"}))
    intents = st.sampled_from([*sorted(domain.intents), "nope"])
    mostly_names = names | odd
    entity = st.fixed_dictionaries(
        {"entity": st.sampled_from(["cuisine", "number"]) | odd, "value": odd},
        optional={"start": odd, "end": odd, "role": odd, "confidence": odd},
    )
    parse_data = st.fixed_dictionaries(
        {"intent": st.fixed_dictionaries({"name": intents | odd, "confidence": odd}) | odd},
        optional={
            "entities": st.lists(entity | odd, max_size=2) | odd,
            "intent_ranking": st.lists(
                st.fixed_dictionaries({"name": intents, "confidence": odd}) | odd, max_size=2
            ),
        },
    )
    extra: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "slot": {"name": names, "value": odd},
        "action": {"name": names, "policy": odd, "confidence": odd},
        "followup": {"name": names},
        "action_execution_rejected": {"name": names},
        "active_loop": {"name": mostly_names},
        "user": {"text": odd, "parse_data": parse_data | odd, "input_channel": odd},
        "bot": {"text": odd, "data": odd, "metadata": odd},
        "entities": {"entities": st.lists(entity | odd, max_size=2)},
        "reminder": {"intent": intents | odd, "date_time": odd, "entities": odd, "name": odd},
        "cancel_reminder": {"name": odd, "intent": odd},
        "loop_interrupted": {"is_interrupted": odd},
    }
    return st.sampled_from(sorted(REQUIRED_KEYS)).flatmap(
        lambda kind: st.fixed_dictionaries(
            {"event": st.just(kind), **extra.get(kind, {})}, optional={"timestamp": odd}
        )
    )


class Hostile:
    """An action executor answering each call with the next drawn answer."""

    def __init__(self, data: st.DataObject, events: st.SearchStrategy[dict[str, Any]]) -> None:
        self.data, self.events = data, events

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        event(f"{name} called")
        answer: dict[str, Any] = {"events": self.data.draw(st.lists(self.events, max_size=3))}
        message = st.fixed_dictionaries({"text": odd}, optional={"buttons": odd, "custom": odd})
        responses = st.lists(message, max_size=1)
        answer["responses"] = self.data.draw(responses)
        return answer


async def converse(model: TrainedModel, data: st.DataObject) -> None:
    events = events_of(model)
    agent = Agent(model, action_executor=Hostile(data, events))
    for _ in range(data.draw(st.integers(1, 6))):
        try:
            await agent.handle_text(data.draw(st.sampled_from(TEXTS)), "guest")
            event("answered")
        except ChatbotError:
            event("refused")
    stored = (await agent.store.load("guest", all_sessions=True)).events
    conversation = Conversation("guest", model.domain, stored)
    for verbosity in ("ALL", "AFTER_RESTART", "APPLIED"):
        json.dumps(tracker_json(conversation, verbosity), allow_nan=False)
    stories_yaml("guest", stored)
    bot_messages(stored, "guest")
    later = Agent(model, store=agent.store, action_executor=Hostile(data, events))
    await later.handle_text("/greet", "guest")


@fuzz(200)
@given(data=st.data())
def test_any_answer_of_an_action_server_leaves_a_conversation_that_goes_on(
    model: TrainedModel, data: st.DataObject
) -> None:
    asyncio.run(converse(model, data))
