"""The restaurant bot's rasa-sdk actions through a real action server (``python -m rasa_sdk``) and
in-process through rasa-sdk's own executor: both give the same conversation."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.processor import ACTION_FAILED_TEXT
from tests.helpers import (
    DOMAINS,
    comparable_events,
    converse,
    dialogue_model,
    free_port,
    rasa_sdk_action_server,
)

# Every slot of the form, with wrong answers that the validation action refuses first.
CONVERSATION = [
    "/greet",
    "/request_restaurant",
    '/inform{"cuisine": "klingon"}',
    '/inform{"cuisine": "Italian"}',
    '/inform{"number": "-2"}',
    '/inform{"number": "4"}',
    "/affirm",
    "/deny",
    "/thankyou",
]


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    """A real rasa-sdk action server with the restaurant bot's actions; its webhook URL."""
    with rasa_sdk_action_server(DOMAINS / "restaurant") as url:
        yield url


@pytest.fixture(scope="module")
def restaurant_model() -> TrainedModel:
    return dialogue_model("restaurant")


async def test_action_server_and_in_process_give_the_same_conversation(
    action_server: str, restaurant_model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    remote = HTTPActionExecutor(action_server)
    try:
        over_http = await converse(
            Agent(restaurant_model, action_executor=remote), "alice", CONVERSATION
        )
    finally:
        await remote.close()
    local = InProcessExecutor(DOMAINS / "restaurant", "actions")
    with caplog.at_level(logging.WARNING, logger="rasa_sdk"):
        in_process = await converse(
            Agent(restaurant_model, action_executor=local), "alice", CONVERSATION
        )
    # Every slot of the form has its validation method: rasa-sdk has nothing to warn about.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rasa_sdk")] == []

    assert comparable_events(over_http[1]) == comparable_events(in_process[1])
    assert over_http[0] == in_process[0]

    replies, events = over_http
    assert any("don't know any restaurant with that cuisine" in r for r in replies[2])
    assert any("positive whole number" in r for r in replies[4])
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["cuisine"] == "italian"  # normalised by the validation action
    assert slots["num_people"] == 4
    assert slots["outdoor_seating"] is True
    assert slots["preferences"] == "no additional preferences"
    assert any(r.startswith("All done!") for r in replies[7])


async def test_action_server_health(action_server: str) -> None:
    executor = HTTPActionExecutor(action_server)
    try:
        assert executor.health_url.endswith("/health")
        assert await executor.ping() is True
    finally:
        await executor.close()


async def test_an_in_process_action_answering_what_json_cannot_carry_fails_as_over_http(
    restaurant_model: TrainedModel, tmp_path: Path
) -> None:
    # Over HTTP rasa-sdk could not send a set or a NaN; in-process they reached the store,
    # which refused them: a 500 for the turn. Now the action fails as a failing server's does.
    (tmp_path / "actions.py").write_text(
        textwrap.dedent(
            """
            from rasa_sdk import Action
            from rasa_sdk.events import SlotSet

            class ValidateRestaurantForm(Action):
                def name(self):
                    return "validate_restaurant_form"

                async def run(self, dispatcher, tracker, domain):
                    value = {"thai"} if "thai" in tracker.latest_message["text"] else 1e999
                    return [SlotSet("cuisine", value)]
            """
        )
    )
    # The restaurant bot's own validate_restaurant_form, imported in this process too, must not
    # answer for this project's (rasa-sdk's register_package would register both).
    InProcessExecutor(DOMAINS / "restaurant", "actions")
    agent = Agent(restaurant_model, action_executor=InProcessExecutor(tmp_path, "actions"))
    for text in ('/request_restaurant{"cuisine": "thai"}', '/request_restaurant{"cuisine": "lao"}'):
        answers = await agent.handle_text(text, f"guest{len(text)}")
        assert [m["text"] for m in answers][-1] == ACTION_FAILED_TEXT
        stored = (await agent.store.load(f"guest{len(text)}")).events
        assert "validate_restaurant_form" not in [e.get("name") for e in stored]
        assert {e.get("value") for e in stored if e.get("name") == "cuisine"} <= {"thai", "lao"}
        assert stored[-1] == {**stored[-1], "event": "action", "name": "action_listen"}


async def test_a_turn_whose_action_failed_is_reverted_so_the_user_can_send_it_again(
    action_server: str, restaurant_model: TrainedModel
) -> None:
    """The action server away: each failed turn is reverted (as Rasa's default fallback reverts a
    message), so nothing is read against a turn that did not happen. The slots a failed turn's
    message filled were kept, a form never started, and a later "yes" confirmed a booking of
    None seats; once the server answers, the user's message starts the form."""
    down = HTTPActionExecutor(f"http://127.0.0.1:{free_port()}/webhook")
    agent = Agent(restaurant_model, action_executor=down)
    texts = ["/greet", "/request_restaurant", '/inform{"cuisine": "italian"}', "/affirm"]
    try:
        replies, events = await converse(agent, "carol", texts)
    finally:
        await down.close()
    assert replies[1:] == [[ACTION_FAILED_TEXT]] * 3
    assert [e["event"] for e in events[-4:]] == ["user", "bot", "rewind", "action"]
    conversation = Conversation("carol", agent.domain, events)
    assert conversation.slots["cuisine"] is None and conversation.loop.name is None
    assert conversation.latest_intent == "greet"
    up = HTTPActionExecutor(action_server)
    try:
        again = Agent(restaurant_model, store=agent.store, action_executor=up)
        answers = await again.handle_text("/request_restaurant", "carol")
    finally:
        await up.close()
    assert [m["text"] for m in answers] == ["What cuisine would you like?"]
