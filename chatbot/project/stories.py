"""Stories, rules and test stories as steps (Rasa's stories.yml / rules.yml / tests/test_*.yml).

Reading them is ``chatbot.project.story_reader``; resolving checkpoints and ``or`` into
conversations is ``training.story_graph``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatbot.project.domain import NO_ORIGIN, Origin
from chatbot.project.training_data import EntityAnnotation

# ``slot_was_set: [name]`` without a value: the slot holds some value, which does not matter.
ANY_VALUE = "__any_value__"


@dataclass(frozen=True)
class UserStep:
    """``- intent: greet`` (with ``entities:``) and/or ``- user: "hi [Ann](name)"``."""

    intent: str | None = None
    entities: tuple[EntityAnnotation, ...] = ()  # offsets are 0/0 when given without text
    text: str | None = None  # plain text, annotation markup removed
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class ActionStep:
    """``- action: utter_greet`` or, end-to-end, ``- bot: "Hello!"`` (``text`` set, name None)."""

    name: str | None = None
    text: str | None = None
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class SlotStep:
    """``- slot_was_set: [{name: value}, name]``; a value of ANY_VALUE means "some value"."""

    slots: tuple[tuple[str, Any], ...]
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class ActiveLoopStep:
    """``- active_loop: form_name`` (or ``null``: the form was deactivated)."""

    name: str | None
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class CheckpointStep:
    name: str
    origin: Origin = NO_ORIGIN
    # ``- checkpoint: x`` with ``slot_was_set: [{name: value}]``: the slots the checkpoint needs.
    slots: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class OrStep:
    """``- or: [...]``: any one of these user steps or slot steps."""

    alternatives: tuple[UserStep | SlotStep, ...]
    origin: Origin = NO_ORIGIN


Step = UserStep | ActionStep | SlotStep | ActiveLoopStep | CheckpointStep | OrStep
StoryKind = Literal["story", "rule", "test"]


@dataclass(frozen=True)
class Story:
    name: str
    kind: StoryKind
    steps: tuple[Step, ...]
    # Rules only: ``condition:`` (slot_was_set / active_loop steps that must hold before the rule),
    # ``conversation_start: true``, ``wait_for_user_input: false``.
    conditions: tuple[Step, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True
    origin: Origin = NO_ORIGIN

    @property
    def where(self) -> str:
        if self.origin.file is None:
            return f"'{self.name}'"
        return f"'{self.name}' ({self.origin.file}:{self.origin.line})"


def bot_texts_of(stories: Sequence[Story]) -> list[str]:
    """The end-to-end bot turns (``- bot: "..."``) of stories, in order, each once."""
    texts = (
        step.text
        for story in stories
        for step in story.steps
        if isinstance(step, ActionStep) and step.name is None and step.text
    )
    return list(dict.fromkeys(texts))
