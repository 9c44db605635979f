"""What custom actions return, as Rasa's processor takes it: a conversation an action paused
(rasa-sdk's ConversationPaused: a human took over) is stored and not answered until resumed,
but for /restart; a slot the domain lacks is not set."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from tests.helpers import RULES_ONLY, train_files

FILES = {
    "domain.yml": """
version: "3.1"
intents: [greet, handoff, odd, offer, picky]
actions: [action_handoff, action_odd_slot, action_offer, action_picky]
responses:
  utter_greet: [{text: Hello!}]
  utter_offer:
  - text: "Hi {name}, a table?"
    buttons: [{title: "Yes", payload: /affirm}]
""",
    "data/rules.yml": """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: hand off
  steps: [{intent: handoff}, {action: action_handoff}]
- rule: odd
  steps: [{intent: odd}, {action: action_odd_slot}]
- rule: offer
  steps: [{intent: offer}, {action: action_offer}]
- rule: picky
  steps: [{intent: picky}, {action: action_picky}]
""",
    "config.yml": RULES_ONLY,
    "actions/__init__.py": "",
    "actions/handoff.py": """
from rasa_sdk import Action
from rasa_sdk.events import ActionExecutionRejected, ConversationPaused, SlotSet


class Picky(Action):
    def name(self):
        return "action_picky"

    def run(self, dispatcher, tracker, domain):
        return [ActionExecutionRejected("action_picky")]


class Offer(Action):
    def name(self):
        return "action_offer"

    def run(self, dispatcher, tracker, domain):
        later = {"title": "Later", "payload": "/deny"}
        dispatcher.utter_message(response="utter_offer", name="Ann", buttons=[later])
        dispatcher.utter_message(response="utter_offer", name="Bo", text="Bo, a seat?")
        dispatcher.utter_message(text="Noted.", mood="happy")
        return []


class OddSlot(Action):
    def name(self):
        return "action_odd_slot"

    def run(self, dispatcher, tracker, domain):
        return [SlotSet("not_in_the_domain", 1)]


class HandOff(Action):
    def name(self):
        return "action_handoff"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="A person will answer you.")
        return [ConversationPaused()]
""",
}


async def test_a_paused_conversation_is_stored_and_not_answered_until_resumed(
    tmp_path: Path,
) -> None:
    agent = Agent(
        train_files(tmp_path, FILES), action_executor=InProcessExecutor(tmp_path, "actions")
    )

    async def say(text: str) -> list[str]:
        return [m["text"] for m in await agent.handle_text(text, "ann")]

    assert await say("/handoff") == ["A person will answer you."]
    assert await say("/greet") == []  # the bot answered regardless
    stored = (await agent.store.load("ann")).events
    assert stored[-1]["event"] == "user" and stored[-1]["text"] == "/greet"
    await agent.processor.append_events("ann", [ev.simple("resume")])
    assert await say("/greet") == ["Hello!"]
    assert await say("/handoff") == ["A person will answer you."]
    await say("/restart")  # restarts even while paused
    assert await say("/greet") == ["Hello!"]


async def test_a_slot_the_domain_lacks_is_not_set_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa logs "Tried to set non existent slot" and sets nothing; it was made up and sent to
    every later action."""
    agent = Agent(
        train_files(tmp_path, FILES), action_executor=InProcessExecutor(tmp_path, "actions")
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.processor"):
        await agent.handle_text("/odd", "bo")
    assert "action 'action_odd_slot' set the slot 'not_in_the_domain'" in caplog.text
    stored = await agent.store.load("bo")
    assert "not_in_the_domain" not in Conversation("bo", agent.domain, stored.events).slots


async def test_keys_given_with_a_response_go_into_the_message_as_in_rasa(tmp_path: Path) -> None:
    """Rasa's RemoteAction: the response rendered with the keys as its values, the given
    buttons after its own, a given text in place of its; other keys are the bot event's
    metadata (they were only template values, and lost beside a text)."""
    agent = Agent(
        train_files(tmp_path, FILES), action_executor=InProcessExecutor(tmp_path, "actions")
    )
    first, second, third = await agent.handle_text("/offer", "cy")
    assert first["text"] == "Hi Ann, a table?"
    assert [b["title"] for b in first["buttons"]] == ["Yes", "Later"]
    assert second["text"] == "Bo, a seat?" and [b["title"] for b in second["buttons"]] == ["Yes"]
    assert third == {"recipient_id": "cy", "text": "Noted."}
    stored = await agent.store.load("cy")
    bots = [e for e in stored.events if e["event"] == "bot"]
    assert (
        bots[0]["metadata"]["name"] == "Ann"
        and bots[0]["metadata"]["utter_action"] == "utter_offer"
    )
    assert bots[2]["metadata"] == {"mood": "happy"}


async def test_an_action_that_returns_its_own_rejection_is_not_logged_as_run(
    tmp_path: Path,
) -> None:
    """Rasa logs no ActionExecuted for an action whose events hold ActionExecutionRejected
    (it was logged as run, then rejected)."""
    agent = Agent(
        train_files(tmp_path, FILES), action_executor=InProcessExecutor(tmp_path, "actions")
    )
    await agent.handle_text("/picky", "di")
    stored = await agent.store.load("di")
    assert not [e for e in stored.events if e["event"] == "action" and e["name"] == "action_picky"]
    assert [e["name"] for e in stored.events if e["event"] == "action_execution_rejected"] == [
        "action_picky"
    ]
