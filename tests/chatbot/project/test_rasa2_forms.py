"""A Rasa 2 domain's form with its slots' mappings in it (``required_slots: {slot: [mappings]}``)
works as Rasa's ``rasa data migrate`` makes it: the mappings are the slots', while the form is
active (and, but for ``from_entity``, while it asks for that slot), with one warning line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.agent import Agent
from chatbot.store import InMemoryStore
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """\
version: "2.0"
intents: [greet, inform, request]
entities: [cuisine]
slots:
  cuisine: {type: text}
  note: {type: text}
forms:
  order_form:
    required_slots:
      cuisine:
      - type: from_entity
        entity: cuisine
      note:
      - type: from_text
responses:
  utter_ask_cuisine: [{text: "Which cuisine?"}]
  utter_ask_note: [{text: "Any note?"}]
  utter_done: [{text: "Done: {cuisine}, {note}."}]
"""
RULES = """\
rules:
- rule: activate the form
  steps:
  - intent: request
  - action: order_form
  - active_loop: order_form
- rule: submit the form
  condition:
  - active_loop: order_form
  steps:
  - action: order_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_done
"""


# Rasa 2.0 wrote the slots and their mappings right under the form (helpdesk-assistant).
DOMAIN_2_0 = DOMAIN.replace("    required_slots:\n", "").replace("\n      ", "\n    ")


@pytest.mark.parametrize(("domain", "line"), [(DOMAIN, 10), (DOMAIN_2_0, 9)])
async def test_a_rasa_2_form_fills_its_slots(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, domain: str, line: int
) -> None:
    with caplog.at_level(logging.WARNING, logger="chatbot.project"):
        model = train_files(
            tmp_path, {"domain.yml": domain, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
        )
    [warning] = [r.getMessage() for r in caplog.records if "Rasa 2 slot mappings" in r.getMessage()]
    assert f"domain.yml:{line}: form 'order_form'" in warning
    assert "(for cuisine, note)" in warning
    agent = Agent(model, store=InMemoryStore())

    async def say(text: str) -> list[str]:
        return [m.get("text") or "" for m in await agent.handle_text(text, "ann")]

    # Outside the form a text fills no note (the mapping holds while the form asks for it);
    # a cuisine fills its slot there too, as Rasa 2's auto_fill did (and `rasa data migrate`
    # writes: a from_entity mapping without conditions).
    await agent.handle_text('/greet{"cuisine": "greek"}', "bob")
    events = (await agent.store.load("bob")).events
    assert [(e["name"], e["value"]) for e in events if e["event"] == "slot"] == [
        ("cuisine", "greek")
    ]
    assert await say("/request") == ["Which cuisine?"]
    assert await say('/inform{"cuisine": "thai"}') == ["Any note?"]
    assert await say("no onions please") == ["Done: thai, no onions please."]


def test_a_rasa_2_form_declared_in_two_domain_files_maps_its_slots_once(tmp_path: Path) -> None:
    from chatbot.project.loader import load_project

    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "a.yml").write_text(DOMAIN)
    (tmp_path / "domain" / "b.yml").write_text(DOMAIN)  # a copy, as split domains often have
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rules.yml").write_text(RULES)
    project = load_project(tmp_path)
    cuisine = project.domain.slots["cuisine"].mappings
    # Rasa 2's auto_fill (no conditions), then the form's mapping (while it is active).
    found = [(m.type, len(m.conditions)) for m in cuisine]
    assert found == [("from_entity", 0), ("from_entity", 1)]
    assert [m.type for m in project.domain.slots["note"].mappings] == ["from_text"]
