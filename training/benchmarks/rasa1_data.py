"""Rasa 1.x data, as the TED paper's MultiWOZ stories have it: Markdown stories and the parts of
a 1.x ``domain.yml`` the dialogue model needs.

Markdown stories::

    ## story_SNG0073
    * inform{"taxi_destination": "specific"}     a user turn: intent and entities (modular)
    * I would like a taxi to the museum.         a user turn: its text (end-to-end)
       - request_taxi                            a bot action (modular)
       - What time do you want to leave?         a bot utterance (end-to-end)
       - slot{"taxi_status": "booked"}           slots the bot set

As in Rasa 1.x (``store_entities_as_slots``), an entity whose name is a slot sets that slot.
Data without a domain file (the paper's sub-dialogue stories) gets one from its stories:
``domain_of_stories``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from chatbot.project.domain import ACTION_LISTEN, Domain, Entity, Intent, Slot
from chatbot.project.stories import ActionStep, SlotStep, Step, Story, UserStep
from chatbot.project.training_data import EntityAnnotation

_USER = re.compile(r"^\*\s*(?P<body>.*)$")
_BOT = re.compile(r"^\s+-\s+(?P<body>.*)$")
_INTENT = re.compile(r"^(?P<intent>[\w\-.]+)\s*(?P<entities>\{.*\})?\s*$")


def read_markdown_stories(
    path: Path, *, end_to_end: bool, slots: Iterable[str] = ()
) -> list[Story]:
    """The stories of one Markdown file. With ``end_to_end``, user and bot turns are texts."""
    slot_names = set(slots)
    stories: list[Story] = []
    name: str | None = None
    steps: list[Step] = []

    def close() -> None:
        if name is not None and steps:
            stories.append(Story(name, "story", tuple(steps)))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if line.startswith("## "):
            close()
            name, steps = line[3:].strip(), []
        elif (user := _USER.match(line)) is not None:
            steps.extend(_user_steps(user["body"], end_to_end, slot_names))
        elif (bot := _BOT.match(line)) is not None:
            body = bot["body"].strip()
            if body.startswith("slot{"):
                values = json.loads(body[len("slot") :])
                steps.append(SlotStep(tuple(values.items())))
            elif end_to_end:
                steps.append(ActionStep(text=body))
            else:
                steps.append(ActionStep(name=body))
    close()
    return stories


def _user_steps(body: str, end_to_end: bool, slot_names: set[str]) -> list[Step]:
    if end_to_end:
        return [UserStep(text=body.strip())]
    match = _INTENT.match(body.strip())
    if match is None:
        raise ValueError(f"not a user turn of a modular story: {body!r}")
    values: dict[str, Any] = json.loads(match["entities"]) if match["entities"] else {}
    entities = tuple(EntityAnnotation(0, 0, str(v), k) for k, v in values.items())
    steps: list[Step] = [UserStep(intent=match["intent"], entities=entities)]
    as_slots = tuple((k, v) for k, v in values.items() if k in slot_names)
    if as_slots:
        steps.append(SlotStep(as_slots))
    return steps


def _sections(text: str) -> dict[str, str]:
    """Top-level sections of a YAML file, each as its own text (a section that is not valid YAML,
    such as end-to-end bot texts with tabs, does not spoil the others)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = sections.setdefault(line.rstrip()[:-1], [line])
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in sections.items()}


def read_rasa1_domain(path: Path, *, with_actions: bool = True) -> Domain:
    """Intents, entities, slots and (unless ``with_actions`` is off) actions of a 1.x domain."""
    sections = _sections(path.read_text(encoding="utf-8"))

    def section(key: str) -> Any:
        return (yaml.safe_load(sections[key]) or {}).get(key) if key in sections else None

    intents = [i if isinstance(i, str) else next(iter(i)) for i in section("intents") or []]
    entities = list(section("entities") or [])
    slots: dict[str, Slot] = {}
    for slot_name, spec in (section("slots") or {}).items():
        kind = spec.get("type", "text")
        values = tuple(str(v) for v in spec.get("values") or ())
        slots[slot_name] = Slot(slot_name, kind if kind != "unfeaturized" else "any", values)
    actions = tuple(section("actions") or ()) if with_actions else ()
    return Domain(
        intents={i: Intent(i) for i in intents},
        entities={e: Entity(e) for e in entities},
        slots=slots,
        actions=actions,
    )


def domain_of_stories(stories: Iterable[Story]) -> Domain:
    """A domain for modular stories that come without one: their intents, entities and actions
    in order of first use, and a ``text`` slot (featurized as set or not) for every entity and
    every slot the stories set, so that entities fill slots as in Rasa 1.x. Read the stories
    again with ``slots=domain.slots`` for the entity-set slots to appear in them."""
    intents: dict[str, None] = {}
    entities: dict[str, None] = {}
    slots: dict[str, None] = {}
    actions: dict[str, None] = {}
    for story in stories:
        for step in story.steps:
            if isinstance(step, UserStep) and step.intent:
                intents[step.intent] = None
                for entity in step.entities:
                    entities[entity.entity] = slots[entity.entity] = None
            elif isinstance(step, SlotStep):
                slots.update(dict.fromkeys(name for name, _ in step.slots))
            elif isinstance(step, ActionStep) and step.name and step.name != ACTION_LISTEN:
                actions[step.name] = None
    return Domain(
        intents={i: Intent(i) for i in intents},
        entities={e: Entity(e) for e in entities},
        slots={s: Slot(s, "text") for s in slots},
        actions=tuple(actions),
    )
