"""MemoizationPolicy: the stories, remembered exactly.

The last ``max_history`` states of every training conversation before each action are stored with
that action; a conversation whose recent states match one exactly gets its action with confidence
1. Histories that the stories continue in different ways are ambiguous and are not remembered.
"""

from __future__ import annotations

import json
from collections.abc import Set
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import MISSING, REQUESTED, State, decode_state, encode_state
from chatbot.dialogue.policy import Policy, Prediction

Key = tuple[State | None, ...]


# The goal features (requested slot, missing slots) are for the LSTM; exact matching leaves them
# out, as Rasa's memoization does (``requested_slot`` does not influence the conversation there).
_GOAL_FEATURES = (REQUESTED, MISSING)


def memo_key(states: list[State], max_history: int) -> Key:
    window: list[State | None] = [
        tuple(item for item in s if item[0] not in _GOAL_FEATURES) for s in states[-max_history:]
    ]
    return tuple([None] * (max_history - len(window)) + window)


class MemoizationPolicy(Policy):
    name = "MemoizationPolicy"
    priority = 3

    def __init__(self, lookup: dict[Key, str], max_history: int = 5) -> None:
        self.lookup = lookup
        self.max_history = max_history

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        states = conversation.recent_states(self.max_history)
        action = self.lookup.get(memo_key(states, self.max_history))
        if action is None or action in excluded:
            return None
        return Prediction(action, 1.0, self.name, self.priority)

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        entries = [
            [[encode_state(s) if s is not None else None for s in key], action]
            for key, action in self.lookup.items()
        ]
        entries.sort(key=lambda e: json.dumps(e, sort_keys=True, default=str))
        return {}, {"max_history": self.max_history, "lookup": entries}

    @classmethod
    def from_export(cls, tensors: dict[str, Any], meta: dict[str, Any]) -> MemoizationPolicy:
        lookup: dict[Key, str] = {}
        for entry in meta["lookup"]:
            if not (isinstance(entry, list) and len(entry) == 2):
                raise ValueError("a memorized entry is a list of states and an action's name")
            key, action = entry
            if not isinstance(key, list) or not isinstance(action, str):
                raise ValueError("a memorized entry is a list of states and an action's name")
            lookup[tuple(decode_state(s) if s is not None else None for s in key)] = action
        max_history = meta["max_history"]
        if not isinstance(max_history, int) or isinstance(max_history, bool) or max_history < 1:
            raise ValueError(f"max_history must be a whole number >= 1, got {max_history!r}")
        return cls(lookup, max_history)
