"""A conversation stored mid-form, then served by a model retrained without that form or without
the slot the form asked for: it goes on (one warning says why), rather than failing every message
or rejecting every answer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.agent import Agent
from chatbot.conversation import conversation as conversation_module
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.project.loader import load_project
from chatbot.store.memory import InMemoryStore
from tests.helpers import domain_of
from training.train import train_project

DOMAIN = """
version: "3.1"
intents: [greet, book, inform]
entities: [city, size]
slots:
  origin:
    type: text
    mappings: [{{type: from_entity, entity: city}}]
  {second}:
    type: text
    mappings: [{{type: from_entity, entity: size}}]
forms:
  {form}:
    required_slots: [origin, {second}]
responses:
  utter_greet: [{{text: hi there}}]
  utter_ask_origin: [{{text: "From where?"}}]
  utter_ask_{second}: [{{text: "Which {second}?"}}]
  utter_done: [{{text: "Done: {{origin}}"}}]
"""
RULES = """
version: "3.1"
rules:
- rule: greet
  steps: [{{intent: greet}}, {{action: utter_greet}}]
- rule: start
  steps: [{{intent: book}}, {{action: {form}}}, {{active_loop: {form}}}]
- rule: submit
  condition: [{{active_loop: {form}}}]
  steps: [{{action: {form}}}, {{active_loop: null}}, {{action: utter_done}}]
"""


def _agent(root: Path, store: InMemoryStore, *, form: str, second: str) -> Agent:
    root.mkdir()
    (root / "domain.yml").write_text(DOMAIN.format(form=form, second=second))
    (root / "data").mkdir()
    (root / "data" / "rules.yml").write_text(RULES.format(form=form))
    (root / "config.yml").write_text("policies: [{name: RulePolicy}]\n")
    return Agent(train_project(load_project(root), show_progress=False), store=store)


async def _texts(agent: Agent, text: str, sender: str = "u") -> list[str]:
    return [m["text"] for m in await agent.handle_text(text, sender) if m.get("text")]


@pytest.fixture
def store() -> InMemoryStore:
    conversation_module._SAID.clear()  # the warnings are said once per process and name
    return InMemoryStore()


async def test_a_form_the_new_model_lacks_is_no_longer_active(
    tmp_path: Path, store: InMemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    old = _agent(tmp_path / "old", store, form="trip_form", second="seats")
    assert await _texts(old, "/book") == ["From where?"]
    new = _agent(tmp_path / "new", store, form="journey_form", second="seats")
    with caplog.at_level(logging.WARNING):
        assert await _texts(new, "/greet") == ["hi there"]
        # The conversation is not stuck: the renamed form starts and runs.
        assert await _texts(new, "/book") == ["From where?"]
        assert await _texts(new, '/inform{"city": "Oslo"}') == ["Which seats?"]
    said = [r.getMessage() for r in caplog.records if "trip_form" in r.getMessage()]
    assert len(said) == 1, said  # once, however often the conversation is loaded
    assert "not in the domain" in said[0]


async def test_a_requested_slot_the_new_model_lacks_asks_for_the_next_one(
    tmp_path: Path, store: InMemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    old = _agent(tmp_path / "old", store, form="trip_form", second="seats")
    assert await _texts(old, "/book") == ["From where?"]
    assert await _texts(old, '/inform{"city": "Oslo"}') == ["Which seats?"]
    new = _agent(tmp_path / "new", store, form="trip_form", second="cabin")
    with caplog.at_level(logging.WARNING):
        # The form asked for `seats`, which the new domain lacks: it asks for `cabin` rather
        # than rejecting the answer (which no mapping of a missing slot could take).
        assert await _texts(new, "/greet") == ["Which cabin?"]
    assert any("'seats'" in r.getMessage() for r in caplog.records)
    assert await _texts(new, '/inform{"size": "big"}') == ["Done: Oslo"]


def test_a_slot_the_domain_lacks_is_not_kept_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation_module._SAID.clear()
    domain = domain_of(DOMAIN.format(form="trip_form", second="seats"))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            conversation = Conversation("u", domain, [ev.slot("gone", 1), ev.slot("origin", "x")])
    assert "gone" not in conversation.slots and conversation.slots["origin"] == "x"
    assert [r.getMessage().count("'gone'") for r in caplog.records] == [1]


def test_a_loop_name_that_is_no_text_is_no_active_loop() -> None:
    domain = domain_of(DOMAIN.format(form="trip_form", second="seats"))
    bad = {"event": "active_loop", "timestamp": 0.0, "name": {"x": 1}}
    assert Conversation("u", domain, [bad]).active_loop_name is None
    assert Conversation("u", domain, [ev.active_loop("trip_form")]).active_loop_name == "trip_form"
