"""Slot-based action masks: a response that cannot be said yet is taken out before the softmax.

A response whose every variation names a slot (``{cuisine}``) that is unset would be sent with the
placeholder unfilled, so the policy must not pick it (Hybrid Code Networks' action masks). The
masks are derived from the domain when the policy is trained, and kept in the model file:

    utter_offer: [["restaurant"]]                  # one variation, needs restaurant
    utter_confirm: [["cuisine", "price"], ["cuisine"]]   # either variation will do

A response with any variation that names no slot is never masked, and so is a response that a
training story (or rule) predicts while one of its slots is unset: the stories show it is said
that way, and the mask would only contradict them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.conversation.responses import placeholders
from chatbot.project.domain import Domain

logger = logging.getLogger(__name__)

# One alternative per variation: the slots it needs.
Needs = tuple[frozenset[str], ...]


def satisfied(needs: Needs, slots: Mapping[str, Any]) -> bool:
    """Whether some alternative has all its slots set (not None)."""
    return any(all(slots.get(s) is not None for s in alt) for alt in needs)


@dataclass(frozen=True)
class ActionMasks:
    """Which actions need which slots (any one alternative with all its slots set will do)."""

    needs: Mapping[str, Needs] = field(default_factory=dict)

    @classmethod
    def from_domain(cls, domain: Domain) -> ActionMasks:
        slots = set(domain.slots)
        needs: dict[str, Needs] = {}
        for name, variations in domain.responses.items():
            alternatives = tuple(frozenset(placeholders(v.data) & slots) for v in variations)
            if alternatives and all(alternatives):
                needs[name] = alternatives
        return cls(needs)

    @classmethod
    def build(cls, domain: Domain, conversations: Iterable[Any]) -> ActionMasks:
        """The domain's masks without those that training conversations contradict (objects
        with ``events`` and ``targets``, as ``training.story_events.TrainingConversation``)."""
        masks = cls.from_domain(domain)
        if not masks.needs:
            return masks
        contradicted = masks.contradicted(domain, conversations)
        for name, story in sorted(contradicted.items()):
            logger.info(
                "'%s' may be predicted with its slots unset: story '%s' says it so",
                name,
                story,
            )
        return cls({k: v for k, v in masks.needs.items() if k not in contradicted})

    def contradicted(self, domain: Domain, conversations: Iterable[Any]) -> dict[str, str]:
        """Masked actions that a conversation predicts while masked -> that conversation's name."""
        found: dict[str, str] = {}
        for conv in conversations:
            events: Sequence[Event] = conv.events
            replay = Conversation(f"masks-{conv.name}", domain)
            for event, target in zip(events, conv.targets, strict=True):
                name = event.get("name")
                if (
                    target
                    and name in self.needs
                    and name not in found
                    and name in self.masked(replay.slots)
                ):
                    found[name] = str(conv.name)
                replay.append(event)
        return found

    def masked(self, slots: Mapping[str, Any]) -> list[str]:
        """The actions that cannot apply with these slot values."""
        return [name for name, needs in self.needs.items() if not satisfied(needs, slots)]

    def to_meta(self) -> dict[str, list[list[str]]]:
        return {name: [sorted(alt) for alt in alts] for name, alts in sorted(self.needs.items())}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Sequence[Sequence[str]]]) -> ActionMasks:
        return cls({name: tuple(frozenset(alt) for alt in alts) for name, alts in meta.items()})
