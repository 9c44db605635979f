"""Slots written for another Rasa than 3.x's schema reads: a Rasa 2 domain's slots without
mappings (auto_fill), custom slot classes, and the slots Rasa adds for its knowledge-base action."""

from __future__ import annotations

import logging
import textwrap

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.yaml_io import load_yaml_text
from tests.chatbot.project.test_domain_reader import _errors


def test_a_rasa_2_domain_fills_slots_without_mappings_from_their_entity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rasa 2's auto_fill (on unless `auto_fill: false`), as `rasa data migrate` writes it:
    rasa-demo's `product` slot stayed empty when its mappings were read as Rasa 3's."""
    text = textwrap.dedent(
        """\
        version: "2.0"
        entities: [product, language]
        slots:
          product:
            type: text
          language:
            type: text
            auto_fill: false
          feedback:
            type: text
        """
    )
    with caplog.at_level(logging.WARNING):
        domain = domain_from_dict(load_yaml_text(text, file="domain.yml"), "domain.yml")
    assert [(m.type, m.entity) for m in domain.slots["product"].mappings] == [
        ("from_entity", "product")
    ]
    assert domain.slots["language"].mappings == domain.slots["feedback"].mappings == ()
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "domain.yml:4: Rasa 2 slots without 'mappings' (product) fill from the entity of their "
        "name, as Rasa 2's auto_fill did; Rasa 3 needs their mappings written out (`chatbot "
        "data migrate` writes them)"
    ]
    # A Rasa 3 file: mappings are what it writes, and `auto_fill` is a mistake.
    rasa3 = text.replace('version: "2.0"', 'version: "3.1"')
    assert (
        domain_from_dict(load_yaml_text(rasa3.replace("    auto_fill: false\n", "")))
        .slots["product"]
        .mappings
        == ()
    )
    assert any("(key 'auto_fill')" in error for error in _errors(rasa3))


def test_a_custom_slot_class_is_recorded_by_the_domain_reader() -> None:
    """Rasa's documented custom slot types (`type: addons.my_slots.NumberOfPeopleSlot`): a
    domain read alone records the class's path and the slot's other keys (its keyword
    arguments, any key); the project loader imports it (tests/chatbot/project/
    test_custom_slots.py). Until then it is a text slot."""
    text = textwrap.dedent(
        """\
        version: "3.1"
        slots:
          people:
            type: addons.my_slots.NumberOfPeopleSlot
            initial_value: 2
            min_value: 1
            seats: [4, 6]
            mappings: []
          typo:
            type: txt
            mappings: []
        """
    )
    with pytest.raises(ProjectErrors) as raised:
        domain_from_dict(load_yaml_text(text, file="domain.yml"), "domain.yml")
    assert [e.value for e in raised.value.errors] == ["txt"]  # a misspelling stays an error
    domain = domain_from_dict(
        load_yaml_text(text.split("  typo:")[0], file="domain.yml"), "domain.yml"
    )
    people = domain.slots["people"]
    assert (people.type, people.initial_value, people.influence_conversation) == ("text", 2, True)
    assert people.custom == "addons.my_slots.NumberOfPeopleSlot" and people.kind is None
    assert people.settings == {"min_value": 1, "seats": [4, 6]}
    # A Rasa 2 file's auto_fill is read apart, as for any slot (Rasa 3's classes take none).
    rasa2 = text.split("  typo:")[0].replace('"3.1"', '"2.0"').replace("    mappings: []\n", "")
    old = domain_from_dict(load_yaml_text(rasa2 + "    auto_fill: false\n"), "domain.yml")
    assert old.slots["people"].settings == {"min_value": 1, "seats": [4, 6]}


def test_the_knowledge_base_action_brings_its_slots_as_rasa() -> None:
    """Rasa's ``_add_knowledge_base_slots``: a domain that lists ``action_query_knowledge_base``
    has the slots rasa-sdk's action sets, as text slots that do not influence the conversation
    (undeclared, their values were dropped: "the second one" was never answered)."""
    names = (
        "knowledge_base_listed_objects",
        "knowledge_base_last_object",
        "knowledge_base_last_object_type",
    )
    with_action = domain_from_dict(
        {
            "actions": ["action_query_knowledge_base"],
            "slots": {"knowledge_base_last_object": {"type": "any", "mappings": []}},
        }
    )
    assert with_action.slots["knowledge_base_last_object"].type == "any"  # declared: kept
    for name in names[0], names[2]:
        slot = with_action.slots[name]
        assert (slot.type, slot.influence_conversation, slot.mappings) == ("text", False, ())
    assert not set(names) & set(domain_from_dict({"actions": ["action_x"]}).slots)
