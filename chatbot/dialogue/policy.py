"""The policy interface and what a policy predicts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event


@dataclass(frozen=True)
class Prediction:
    action: str
    confidence: float
    policy: str
    priority: int
    # Rules hide the turns they predicted from the LSTM's history, as Rasa's ``hide_rule_turn``.
    hide_rule_turn: bool = False
    # Events the policy predicts with its action (a custom policy's ``PolicyPrediction.events``):
    # logged before the action, which runs with them applied, as Rasa's processor does.
    events: tuple[Event, ...] = field(default=(), compare=False)


class Policy(ABC):
    """Picks the next action from the conversation; trained by ``training.dialogue``."""

    name: str
    priority: int

    @abstractmethod
    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        """The next action, or None when this policy has nothing to say."""

    @abstractmethod
    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Tensors and JSON metadata for the model file."""
