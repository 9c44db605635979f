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
from chatbot.conversation.events import Event
from chatbot.conversation.state import MISSING, REQUESTED, State, decode_state, encode_state
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.project.domain import ACTION_LISTEN

Key = tuple[State | None, ...]


# The goal features (requested slot, missing slots) are for the LSTM; exact matching leaves them
# out, as Rasa's memoization does (``requested_slot`` does not influence the conversation there).
_GOAL_FEATURES = (REQUESTED, MISSING)


def _remembered(state: State) -> State:
    """What of ``state`` a key holds: its features that have a value. A state has an entry for
    every slot that influences the conversation, set or not; kept all, a domain with 300 slots
    made every memorized state 300 entries long (a 184 MB model file for 1,000 stories, 12 s to
    load). Rasa's states hold only the slots that are set, too. Exact matching is the same:
    every state has the same names, so one without an entry is one with it unset."""
    return tuple(item for item in state if item[1] is not None and item[0] not in _GOAL_FEATURES)


def memo_key(states: list[State], max_history: int) -> Key:
    window: list[State | None] = [_remembered(s) for s in states[-max_history:]]
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
        """``states``: each distinct memorized state once; ``lookup``: each key as indices into
        it (null before a conversation's first state) with its action. M of the large-project
        benchmark remembers 17,833 keys of 5 states made of only 163 distinct ones: written out
        in every key they were 8.5 MB of the model file, and decoding them 0.25 s of startup."""
        # In first-seen order (not a set's, which moves with str hashing between processes).
        distinct = dict.fromkeys(s for key in self.lookup for s in key if s is not None)
        encoded = {state: json.dumps(encode_state(state), default=str) for state in distinct}
        ordered = sorted(distinct, key=encoded.__getitem__)
        position = {state: i for i, state in enumerate(ordered)}
        entries = [
            [[position[s] if s is not None else None for s in key], action]
            for key, action in self.lookup.items()
        ]
        entries.sort(key=lambda e: json.dumps(e))
        states = [encode_state(state) for state in ordered]
        return {}, {"max_history": self.max_history, "states": states, "lookup": entries}

    @classmethod
    def from_export(cls, tensors: dict[str, Any], meta: dict[str, Any]) -> MemoizationPolicy:
        table = meta.get("states")
        states = None if table is None else _decode_table(table)
        lookup: dict[Key, str] = {}
        for entry in meta["lookup"]:
            if not (isinstance(entry, list) and len(entry) == 2):
                raise ValueError("a memorized entry is a list of states and an action's name")
            key, action = entry
            if not isinstance(key, list) or not isinstance(action, str):
                raise ValueError("a memorized entry is a list of states and an action's name")
            if states is not None:
                lookup[tuple(_state_at(states, i) for i in key)] = action
            else:
                # A model file from before the state table holds each key's states whole, and
                # one from before ``_remembered`` the unset features too.
                lookup[
                    tuple(_remembered(decode_state(s)) if s is not None else None for s in key)
                ] = action
        max_history = meta["max_history"]
        if not isinstance(max_history, int) or isinstance(max_history, bool) or max_history < 1:
            raise ValueError(f"max_history must be a whole number >= 1, got {max_history!r}")
        return cls(lookup, max_history)


def _decode_table(table: Any) -> list[State]:
    if not isinstance(table, list):
        raise ValueError("the memorized states must be a list")
    return [_remembered(decode_state(s)) for s in table]


def _state_at(states: list[State], i: Any) -> State | None:
    if i is None:
        return None
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(states):
        raise ValueError(f"a memorized key names state {i!r}, the table has {len(states)}")
    return states[i]


class AugmentedMemoizationPolicy(MemoizationPolicy):
    """Rasa's AugmentedMemoizationPolicy: the stories remembered exactly, and where the recent
    states match none, the conversation's past forgotten a turn at a time until they do.

    The conversation is cut down to its last ``max_history`` actions, then started again at each
    of those actions in turn, its slots back at their initial values (a slot set before the cut
    is forgotten), and each shorter conversation's states looked up: a story that never set a
    slot the user set earlier, or that begins where this conversation is now, still answers.
    """

    name = "AugmentedMemoizationPolicy"

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        key = memo_key(conversation.recent_states(self.max_history), self.max_history)
        action = self.lookup.get(key)
        if action is None:
            action = self._recall_forgetting(conversation, key)
        if action is None or action in excluded:
            return None
        return Prediction(action, 1.0, self.name, self.priority)

    def _recall_forgetting(self, conversation: Conversation, key: Key) -> str | None:
        events = _last_actions(conversation.applied_events(), self.max_history)
        again = False
        while True:
            start = _action_index(events, second=again)
            if start is None:
                return None
            events = events[start:]
            shorter = Conversation(conversation.sender_id, conversation.domain, events)
            shorter_key = memo_key(shorter.recent_states(self.max_history), self.max_history)
            if shorter_key != key:
                action = self.lookup.get(shorter_key)
                if action is not None:
                    return action
                key = shorter_key
            again = True


def _last_actions(applied: list[Event], max_history: int) -> list[Event]:
    """The events from the ``action_listen`` before the last ``max_history`` actions on (all of
    them where there are not that many), as Rasa trims a conversation to its ``max_history``."""
    actions = 0
    for i in range(len(applied) - 1, -1, -1):
        event = applied[i]
        if event.get("event") == "action":
            actions += 1
            if actions > max_history and event.get("name") == ACTION_LISTEN:
                return applied[i:]
    return applied


def _action_index(events: list[Event], *, second: bool) -> int | None:
    """The index of the first action among ``events`` (of the second, with ``second``)."""
    seen = 0
    for i, event in enumerate(events):
        if event.get("event") == "action":
            seen += 1
            if seen == (2 if second else 1):
                return i
    return None
