"""Rasa 3's ``action_validate_slot_mappings``: where the domain lists it, a rasa-sdk
``ValidationAction`` runs after every user message on the slots just extracted, outside forms
too: its ``extract_<slot>`` methods fill custom slots, its ``validate_<slot>`` methods keep,
change or reject (``None``) a value, and a rejected value is never stored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.project.loader import load_project
from training.train import train_project

DOMAIN = """
version: "3.1"
intents: [greet, inform, call_me]
entities: [number, name]
slots:
  age:
    type: float
    mappings: [{type: from_entity, entity: number}]
  nickname:
    type: text
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: hi}]
  utter_ok: [{text: "age {age}"}]
  utter_named: [{text: "hello {nickname}"}]
actions: [action_validate_slot_mappings]
"""
RULES = """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: inform
  steps: [{intent: inform}, {action: utter_ok}]
- rule: call me
  steps: [{intent: call_me}, {action: utter_named}]
"""
ACTIONS = """
from rasa_sdk.forms import ValidationAction


class ValidateSlotMappings(ValidationAction):
    def extract_nickname(self, dispatcher, tracker, domain):
        names = [e["value"] for e in tracker.latest_message.get("entities", [])
                 if e.get("entity") == "name"]
        return {"nickname": names[0].upper()} if names else {}

    def validate_age(self, value, dispatcher, tracker, domain):
        if not 0 < float(value) < 150:
            dispatcher.utter_message(text="That is not an age.")
            return {"age": None}
        return {"age": round(float(value))}
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    root = tmp_path_factory.mktemp("bot")
    (root / "domain.yml").write_text(DOMAIN)
    (root / "data").mkdir()
    (root / "data" / "rules.yml").write_text(RULES)
    (root / "config.yml").write_text("policies: [{name: RulePolicy}]\n")
    (root / "actions").mkdir()
    (root / "actions" / "__init__.py").write_text("")
    (root / "actions" / "validation.py").write_text(ACTIONS)
    return root, train_project(load_project(root), show_progress=False)


@pytest.fixture
async def agent(bot: tuple[Path, TrainedModel]) -> Agent:
    root, model = bot
    agent = Agent(model, action_executor=InProcessExecutor(root, "actions"))
    yield agent
    await agent.close()


async def texts(agent: Agent, sender: str, message: str) -> list[str]:
    return [m["text"] for m in await agent.handle_text(message, sender) if m.get("text")]


async def stored(agent: Agent, sender: str) -> tuple[dict, list[dict]]:
    events = (await agent.store.load(sender)).events
    return Conversation(sender, agent.domain, events).slots, events


async def test_a_valid_value_is_kept_as_the_validator_returns_it(agent: Agent) -> None:
    assert await texts(agent, "ann", '/inform{"number": 30.4}') == ["age 30"]
    slots, events = await stored(agent, "ann")
    assert slots["age"] == 30
    assert [e["value"] for e in events if e["event"] == "slot" and e["name"] == "age"] == [30]


async def test_a_rejected_value_is_said_and_never_stored(agent: Agent) -> None:
    assert await texts(agent, "bob", '/inform{"number": 200}') == [
        "That is not an age.",
        "age None",  # as Rasa fills an unset slot
    ]
    slots, events = await stored(agent, "bob")
    assert slots["age"] is None
    # as Rasa: the validator's None is stored, the rejected value never
    assert [e["value"] for e in events if e["event"] == "slot" and e["name"] == "age"] == [None]
    # a value the validator leaves alone stays as extracted: none of age's here
    assert await texts(agent, "bob", '/inform{"number": 41}') == ["age 41"]


async def test_a_custom_slot_is_filled_by_its_extract_method(agent: Agent) -> None:
    assert await texts(agent, "cy", '/call_me{"name": "bobby"}') == ["hello BOBBY"]
    assert (await stored(agent, "cy"))[0]["nickname"] == "BOBBY"
    await texts(agent, "cy", "/greet")  # nothing to extract: the slot keeps its value
    assert (await stored(agent, "cy"))[0]["nickname"] == "BOBBY"


async def test_without_an_action_server_the_extracted_values_stay(
    bot: tuple[Path, TrainedModel], caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(bot[1])  # no action endpoint
    try:
        with caplog.at_level(logging.ERROR):
            assert await texts(agent, "dee", '/inform{"number": 200}') == ["age 200"]
        assert "action_validate_slot_mappings" in caplog.text
    finally:
        await agent.close()
