"""Slot features where a story names a slot without a value (``slot_was_set: [name]``)."""

from __future__ import annotations

import pytest

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import SLOT_PREFIX
from chatbot.project.stories import ANY_VALUE
from tests.helpers import domain_of

DOMAIN = domain_of(
    """
intents: [deny]
slots:
  note: {type: text, mappings: []}
  items: {type: list, mappings: []}
  vip: {type: bool, mappings: []}
  tier: {type: categorical, values: [gold, silver], mappings: []}
  count: {type: float, mappings: []}
"""
)


@pytest.mark.parametrize(
    ("slot", "feature"),
    [
        ("note", True),  # text and list slots: set to some value
        ("items", True),
        ("vip", None),  # any other type: unset, as Rasa's story reader has it
        ("tier", None),
        ("count", None),
    ],
)
def test_a_slot_named_without_a_value(slot: str, feature: object) -> None:
    named = Conversation("c", DOMAIN, [ev.action("action_listen"), ev.slot(slot, ANY_VALUE)])
    assert dict(named.current_state())[SLOT_PREFIX + slot] == feature
    if feature is None:  # the same state as a conversation where the slot was never set
        unset = Conversation("c", DOMAIN, [ev.action("action_listen")])
        assert named.current_state() == unset.current_state()
