"""RulePolicy: rules are short state patterns that must match the end of the conversation exactly.

A rule is a sequence of partial states (only the features the rule mentions) ending in the action
it predicts. The most specific matching rule wins (more states, then more features). Besides the
project's rules, the policy knows Rasa's built-in behaviour: ``restart``/``back``/``session_start``
intents run their default actions, and an active form keeps running after each user message until
it rejects (then rules for the digression apply) or finishes.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.messages import has_words
from chatbot.conversation.state import (
    ACTIVE_LOOP,
    INTENT,
    PREV_ACTION,
    TEXT,
    State,
    decode_state,
    encode_state,
)
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.project import domain as d

DEFAULT_INTENT_ACTIONS = {
    d.INTENT_RESTART: d.ACTION_RESTART,
    d.INTENT_BACK: d.ACTION_BACK,
    d.INTENT_SESSION_START: d.ACTION_SESSION_START,
}


@dataclass(frozen=True)
class Rule:
    states: tuple[State, ...]  # partial states, oldest first
    action: str
    conversation_start: bool
    source: str  # the rule's name, for messages

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.states), sum(len(s) for s in self.states))

    def mentions(self, feature: str) -> bool:
        return any(key == feature for state in self.states for key, _ in state)

    def matches(self, history: Sequence[dict[str, Any]]) -> bool:
        n = len(self.states)
        if n > len(history):
            return False
        for partial, full in zip(self.states, history[-n:], strict=False):
            for key, value in partial:
                if full.get(key, None) != value:
                    return False
        return True


def _with_text(history: list[dict[str, Any]], text: Any) -> list[dict[str, Any]] | None:
    """``history`` with the user's words in place of the intent in the states of the latest
    turn (from the state after its ``action_listen``); None for a message without words (a
    ``/intent`` payload)."""
    if not has_words(text):
        return None
    turn = max(
        (i for i, s in enumerate(history) if s.get(PREV_ACTION) == d.ACTION_LISTEN), default=0
    )
    changed = [dict(s) for s in history]
    for state in changed[turn:]:
        if state.get(INTENT) is not None:
            state[INTENT] = None
            state[TEXT] = text
    return changed


class RulePolicy(Policy):
    name = "RulePolicy"
    priority = 6

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        core_fallback_threshold: float = 0.3,
        core_fallback_action_name: str = d.ACTION_DEFAULT_FALLBACK,
        enable_fallback_prediction: bool = True,
    ) -> None:
        self.rules = sorted(rules, key=lambda r: r.specificity, reverse=True)
        self.max_len = max((len(r.states) for r in self.rules), default=1)
        self.core_fallback_threshold = core_fallback_threshold
        self.core_fallback_action_name = core_fallback_action_name
        self.enable_fallback_prediction = enable_fallback_prediction
        self._text_rules = [r for r in self.rules if r.mentions(TEXT)]

    def without(self, rules: Sequence[Rule]) -> RulePolicy:
        """The same policy less ``rules``."""
        return RulePolicy(
            [r for r in self.rules if r not in rules],
            core_fallback_threshold=self.core_fallback_threshold,
            core_fallback_action_name=self.core_fallback_action_name,
            enable_fallback_prediction=self.enable_fallback_prediction,
        )

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        prev = conversation.latest_action_name
        intent = conversation.latest_intent
        if prev == d.ACTION_LISTEN and intent in DEFAULT_INTENT_ACTIONS:
            return self._prediction(DEFAULT_INTENT_ACTIONS[intent], excluded)
        loop = conversation.loop
        if loop.name and not loop.rejected:
            if prev == d.ACTION_LISTEN:
                return self._prediction(loop.name, excluded)
            if prev == loop.name:
                return self._prediction(d.ACTION_LISTEN, excluded)
        # Only as far back as the longest rule reaches.
        history = [dict(s) for s in conversation.recent_states(self.max_len)]
        if self._text_rules:
            # Rules with the user's words (end-to-end ``- user:`` steps) come first, as in Rasa:
            # the latest turn's states read its words in place of the intent.
            by_text = _with_text(history, conversation.state_message.get("text"))
            if by_text is not None:
                found = self._match(self._text_rules, by_text, conversation, excluded)
                if found is not None:
                    return found
        return self._match(self.rules, history, conversation, excluded)

    def _match(
        self,
        rules: Sequence[Rule],
        history: list[dict[str, Any]],
        conversation: Conversation,
        excluded: Set[str],
    ) -> Prediction | None:
        loop = conversation.loop
        for rule in rules:
            if rule.action in excluded:
                continue
            if rule.conversation_start and conversation.num_states != len(rule.states):
                continue
            if rule.matches(history):
                if rule.action == d.ACTION_LISTEN and loop.name and not rule.mentions(ACTIVE_LOOP):
                    # A rule that knows nothing of forms ends inside one: the form resumes.
                    return self._prediction(loop.name, excluded)
                return self._prediction(rule.action, excluded)
        return None

    def _prediction(self, action: str, excluded: Set[str]) -> Prediction | None:
        if action in excluded:
            return None
        return Prediction(action, 1.0, self.name, self.priority)

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {
            "core_fallback_threshold": self.core_fallback_threshold,
            "core_fallback_action_name": self.core_fallback_action_name,
            "enable_fallback_prediction": self.enable_fallback_prediction,
            "rules": [
                {
                    "states": [encode_state(s) for s in r.states],
                    "action": r.action,
                    "conversation_start": r.conversation_start,
                    "source": r.source,
                }
                for r in self.rules
            ],
        }

    @classmethod
    def from_export(cls, tensors: dict[str, Any], meta: dict[str, Any]) -> RulePolicy:
        rules = []
        for r in meta["rules"]:
            action, start, source = r["action"], r["conversation_start"], r["source"]
            if not isinstance(r["states"], list) or not isinstance(action, str):
                raise ValueError(f"rule {source!r}: states must be a list, the action a name")
            if not isinstance(start, bool) or not isinstance(source, str):
                raise ValueError(f"rule {source!r}: conversation_start must be true or false")
            rules.append(Rule(tuple(decode_state(s) for s in r["states"]), action, start, source))
        threshold, fallback = meta["core_fallback_threshold"], meta["core_fallback_action_name"]
        enabled = meta["enable_fallback_prediction"]
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise ValueError(f"core_fallback_threshold must be a number, got {threshold!r}")
        if not isinstance(fallback, str) or not isinstance(enabled, bool):
            raise ValueError("core_fallback_action_name must be a name, the switch true or false")
        return cls(
            rules,
            core_fallback_threshold=threshold,
            core_fallback_action_name=fallback,
            enable_fallback_prediction=enabled,
        )
