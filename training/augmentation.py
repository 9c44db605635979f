"""Story augmentation, as Rasa's: random stories glued one after another into longer conversations.

A real user rarely does one thing per conversation. Gluing stories teaches the tracker that a new
request can follow a finished one, with whatever slots the earlier part left set. As in Rasa,
``augmentation_factor * 10`` glued conversations are made (Rasa's default factor is 50); the same
seed gives the same conversations.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from chatbot.project.domain import ACTION_LISTEN
from training.story_events import TrainingConversation

DEFAULT_AUGMENTATION_FACTOR = 50


def _ends_listening(conv: TrainingConversation) -> bool:
    last = conv.events[-1] if conv.events else None
    return last is not None and last.get("event") == "action" and last["name"] == ACTION_LISTEN


def _starts_listening(conv: TrainingConversation) -> bool:
    first = conv.events[0] if conv.events else None
    return first is not None and first.get("event") == "action" and first["name"] == ACTION_LISTEN


def glue(parts: Sequence[TrainingConversation]) -> TrainingConversation:
    """One conversation made of ``parts`` in order: each part after the first drops its leading
    ``action_listen``, which the part before already ends with."""
    glued = TrainingConversation(" + ".join(p.name for p in parts), parts[0].source, generated=True)
    for n, part in enumerate(parts):
        skip = 1 if n and _starts_listening(part) else 0
        for event, target, mentioned in zip(
            part.events[skip:], part.targets[skip:], part.mentioned[skip:], strict=True
        ):
            glued.add(event, target, mentioned)
    return glued


def augment(
    stories: Sequence[TrainingConversation],
    *,
    augmentation_factor: int = DEFAULT_AUGMENTATION_FACTOR,
    seed: int = 42,
    max_parts: int = 3,
) -> list[TrainingConversation]:
    """``augmentation_factor * 10`` conversations of 2 to ``max_parts`` random stories each.

    Only stories that end by listening are continued (one that ends mid-turn cannot be followed
    by a user message); any story can come last. Nothing is made from fewer than two stories.
    """
    if augmentation_factor <= 0 or len(stories) < 2:
        return []
    rng = random.Random(seed)
    heads = [s for s in stories if _ends_listening(s) and _starts_listening(s)]
    tails = [s for s in stories if _starts_listening(s)]
    if not heads or not tails:
        return []
    out: list[TrainingConversation] = []
    for _ in range(augmentation_factor * 10):
        count = rng.randint(2, max(2, max_parts))
        parts = [rng.choice(heads) for _ in range(count - 1)]
        parts.append(rng.choice(tails))
        out.append(glue(parts))
    return out
