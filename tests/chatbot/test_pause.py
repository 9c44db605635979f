"""A conversation a custom action paused (rasa-sdk's ConversationPaused: a human took over) is
stored and not answered until it is resumed, but for /restart, as in Rasa."""

from __future__ import annotations

from pathlib import Path

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation import events as ev
from tests.helpers import RULES_ONLY, train_files

FILES = {
    "domain.yml": """
version: "3.1"
intents: [greet, handoff]
actions: [action_handoff]
responses:
  utter_greet: [{text: Hello!}]
""",
    "data/rules.yml": """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: hand off
  steps: [{intent: handoff}, {action: action_handoff}]
""",
    "config.yml": RULES_ONLY,
    "actions/__init__.py": "",
    "actions/handoff.py": """
from rasa_sdk import Action
from rasa_sdk.events import ConversationPaused


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
