"""The knowledge-base example bot (domains/knowledgebase): rasa-sdk's own
``ActionQueryKnowledgeBase`` over an ``InMemoryKnowledgeBase`` read from JSON, with the NLU
trained from the bot's examples. The conversation lists hotels, asks about the first one by
ordinal, then about "it"; lists italian restaurants (one: it becomes the last object), asks
about it, then about a restaurant by name. In-process and through a real action server, the
answers are the JSON's names and values, and the knowledge-base slots are set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from tests.helpers import (
    DOMAINS,
    comparable_events,
    converse,
    example_project,
    rasa_sdk_action_server,
)
from training.train import train_project

BOT = DOMAINS / "knowledgebase"
DATA = json.loads((BOT / "knowledge_base_data.json").read_text(encoding="utf-8"))
HOTELS = sorted(DATA["hotel"], key=lambda obj: obj["id"])
RESTAURANTS = {obj["name"]: obj for obj in DATA["restaurant"]}

CONVERSATION = [
    "hello",
    "what hotels are there?",
    "what is the price range of the first one?",
    "does it have free wifi?",
    "do you know any italian restaurants?",
    "does it have outdoor seating?",
    "what is the price range of Sakura Garden?",
    "bye",
]


def hotel(obj: dict[str, Any]) -> str:
    return f"{obj['name']} ({obj['city']})"  # the bot's representation of a hotel


def has_value(name: str, attribute: str, value: Any) -> str:
    """rasa-sdk's ``utter_attribute_value`` text."""
    return f"'{name}' has the value '{value}' for attribute '{attribute}'."


first = HOTELS[0]
nonna = RESTAURANTS["Trattoria Nonna"]  # the only italian one
sakura = RESTAURANTS["Sakura Garden"]
EXPECTED = [
    ['Hi! Ask me about hotels and restaurants, e.g. "what hotels are there?"'],
    [
        "Found the following objects of type 'hotel':",
        *[f"{i}: {hotel(obj)}" for i, obj in enumerate(HOTELS, 1)],
    ],
    [has_value(hotel(first), "price-range", first["price-range"])],
    [has_value(hotel(first), "free-wifi", first["free-wifi"])],
    ["Found the following objects of type 'restaurant':", "1: Trattoria Nonna"],
    [has_value("Trattoria Nonna", "outside-seating", nonna["outside-seating"])],
    [has_value("Sakura Garden", "price-range", sakura["price-range"])],
    ["Bye!"],
]


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    """The bot with its NLU (a few seconds on one torch thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_project(
            example_project("knowledgebase", nlu=True), seed=1, show_progress=False
        )
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    with rasa_sdk_action_server(BOT) as url:
        yield url


async def test_in_process_the_answers_come_from_the_knowledge_base(model: TrainedModel) -> None:
    agent = Agent(model, action_executor=InProcessExecutor(BOT, "actions"))
    replies, events = await converse(agent, "ann", CONVERSATION)
    assert replies == EXPECTED

    actions = [e for e in events if e["event"] == "action"]
    ran = [e["name"] for e in actions if e["name"] == "action_query_knowledge_base"]
    assert len(ran) == 6
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}  # the last of each
    # The last answer was about Sakura Garden, named by the user (its slot is the entity).
    assert slots["knowledge_base_last_object"] == sakura["id"]
    assert slots["knowledge_base_last_object_type"] == "restaurant"
    assert slots["knowledge_base_listed_objects"] == [nonna["id"]]
    assert slots["restaurant"] == "Sakura Garden"
    # The action empties what the message filled once it has answered.
    assert (slots["object_type"], slots["mention"], slots["attribute"]) == (None, None, None)
    assert slots["cuisine"] is None


async def test_the_knowledge_base_slots_after_each_answer(model: TrainedModel) -> None:
    agent = Agent(model, action_executor=InProcessExecutor(BOT, "actions"))
    _, events = await converse(agent, "bob", CONVERSATION)
    set_by_action = []
    current: dict[str, Any] | None = None
    for event in events:
        if event["event"] == "action":
            current = {} if event["name"] == "action_query_knowledge_base" else None
            if current is not None:
                set_by_action.append(current)
        elif event["event"] == "slot" and current is not None:
            current[event["name"]] = event["value"]
        elif event["event"] == "user":
            current = None
    hotel_ids = [obj["id"] for obj in HOTELS]
    assert set_by_action[0]["knowledge_base_listed_objects"] == hotel_ids
    assert set_by_action[0]["knowledge_base_last_object"] is None  # several were listed
    assert set_by_action[0]["knowledge_base_last_object_type"] == "hotel"
    # "the first one" and then "it": the first listed hotel both times.
    assert set_by_action[1]["knowledge_base_last_object"] == first["id"]
    assert set_by_action[2]["knowledge_base_last_object"] == first["id"]
    # One italian restaurant: listing it makes it the last object, so "it" is that one.
    assert set_by_action[3]["knowledge_base_listed_objects"] == [nonna["id"]]
    assert set_by_action[3]["knowledge_base_last_object"] == nonna["id"]
    assert set_by_action[3]["cuisine"] is None  # the filter is reset after the list
    assert set_by_action[4]["knowledge_base_last_object"] == nonna["id"]
    assert set_by_action[5]["knowledge_base_last_object"] == sakura["id"]


async def test_an_action_server_gives_the_same_conversation(
    model: TrainedModel, action_server: str
) -> None:
    remote = HTTPActionExecutor(action_server)
    try:
        over_http = await converse(Agent(model, action_executor=remote), "cat", CONVERSATION)
    finally:
        await remote.close()
    in_process = await converse(
        Agent(model, action_executor=InProcessExecutor(BOT, "actions")), "cat", CONVERSATION
    )
    assert over_http[0] == EXPECTED
    assert comparable_events(over_http[1]) == comparable_events(in_process[1])
