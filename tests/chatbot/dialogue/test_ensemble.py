"""The ensemble asks the policies by priority and stops once no policy left could win; the answer
is the one asking every policy gives."""

from __future__ import annotations

import random
from collections.abc import Set
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.project.domain import Domain

CONVERSATION = Conversation("u", Domain())


class Fixed(Policy):
    """Predicts one action with a fixed confidence (None: nothing); counts its calls."""

    def __init__(self, name: str, priority: int, confidence: float | None) -> None:
        self.name, self.priority, self.confidence = name, priority, confidence
        self.calls = 0

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        self.calls += 1
        if self.confidence is None:
            return None
        return Prediction(f"action_{self.name}", self.confidence, self.name, self.priority)

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {}


def every_policy_asked(policies: list[Fixed], threshold: float) -> Prediction:
    """The ensemble's rule applied to every policy's prediction, in the configuration's order."""
    best: Prediction | None = None
    for policy in policies:
        prediction = policy.predict(CONVERSATION)
        if prediction is not None and (
            best is None
            or (prediction.confidence, prediction.priority) > (best.confidence, best.priority)
        ):
            best = prediction
    if best is None or best.confidence < threshold:
        return Prediction(
            "action_default_fallback", best.confidence if best else 0.0, "fallback", 0
        )
    return best


def test_the_answer_is_the_one_asking_every_policy_gives() -> None:
    rng = random.Random(7)
    skipped = 0
    for _ in range(2000):
        policies = [
            Fixed(
                f"p{i}",
                rng.choice([1, 3, 6]),
                rng.choice([None, 1.0, 1.0, 0.9, 0.5, 0.2, round(rng.random(), 2)]),
            )
            for i in range(rng.randint(1, 5))
        ]
        ensemble = PolicyEnsemble(policies, fallback_threshold=0.3)
        got = ensemble.predict(CONVERSATION)
        skipped += sum(1 for p in policies if p.calls == 0)
        assert got == every_policy_asked(policies, 0.3), policies
    assert skipped > 500  # the shortcut was taken, often


def test_a_sure_rule_spares_the_lower_policies() -> None:
    lstm, memo, rules = Fixed("lstm", 1, 0.8), Fixed("memo", 3, None), Fixed("rules", 6, 1.0)
    ensemble = PolicyEnsemble([lstm, memo, rules])  # any order in the configuration
    assert ensemble.predict(CONVERSATION).policy == "rules"
    assert (rules.calls, memo.calls, lstm.calls) == (1, 0, 0)
    unsure = PolicyEnsemble([Fixed("rules", 6, None), Fixed("memo", 3, None), lstm])
    assert unsure.predict(CONVERSATION).policy == "lstm"
    assert lstm.calls == 1
