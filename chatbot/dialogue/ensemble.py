"""The policy ensemble: the highest confidence wins, priority breaks ties (then the order of the
configuration), and below ``core_fallback_threshold`` the fallback action runs instead (as Rasa's
RulePolicy).

The policies are asked in the order of their priority, highest first, and once the best
prediction so far has full confidence and no policy left has a higher priority, the rest are not
asked: none of them could win (a confidence is at most 1, and at equal confidence and priority
the earlier policy wins). The answer is the one every policy would give; a rule's turn then costs
no LSTM prediction."""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set

from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.project import domain as d

logger = logging.getLogger(__name__)


class PolicyEnsemble:
    def __init__(
        self,
        policies: Sequence[Policy],
        *,
        fallback_threshold: float = 0.3,
        fallback_action: str = d.ACTION_DEFAULT_FALLBACK,
    ) -> None:
        self.policies = list(policies)
        # Highest priority first; a stable sort keeps the configuration's order among equals.
        self._asked = sorted(self.policies, key=lambda p: -p.priority)
        self.fallback_threshold = fallback_threshold
        self.fallback_action = fallback_action

    def predict(self, conversation: Conversation, excluded: Set[str] = frozenset()) -> Prediction:
        best: Prediction | None = None
        for policy in self._asked:
            if best is not None and best.confidence >= 1.0 and best.priority >= policy.priority:
                break  # neither this policy nor a later one (no higher priority) can win
            prediction = policy.predict(conversation, excluded)
            if prediction is None:
                continue
            if best is None or (prediction.confidence, prediction.priority) > (
                best.confidence,
                best.priority,
            ):
                best = prediction
        if best is None or best.confidence < self.fallback_threshold:
            if self.fallback_action in excluded:
                return Prediction(d.ACTION_LISTEN, 0.0, "fallback", 0)
            confidence = best.confidence if best else 0.0
            logger.debug(
                "no policy above %.2f; running %s", self.fallback_threshold, self.fallback_action
            )
            return Prediction(self.fallback_action, confidence, "fallback", 0)
        return best
