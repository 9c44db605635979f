"""A form's happy path, unfolded from the stories for the LSTM tracker to learn.

Rasa writes a form that runs to its end in one line pair (``- action: F``, ``- active_loop: F``,
then ``- active_loop: null``): the turns in which the form asks for each slot and the user answers
are left out, because at run time RulePolicy's loop rule runs the form again after each answer.
Our LSTM tracker is asked to run forms without rules too: the goal (the active form, its requested
slot and its missing slots) is in its state, so it can learn "the user just gave the slot the form
asked for -> run the form again" if it sees such turns. This module writes them.

For every story in which a form runs to its end, ``unfold_form_paths`` makes copies in which the
folded part is spelled out as the form would run it: ``requested_slot`` set to the next missing
required slot, a listen, a user turn that fills it (an intent and entity that the slot's
mappings take, with a value the stories or NLU data gave that entity), the slot set, the form run
again. Where a form is interrupted (a user turn the stories answer otherwise), the copy only sets
``requested_slot`` as the form would have, so the interruption is seen with the goal it happened
in. The user turns are drawn, reproducibly, from what the project itself shows: intents and
values the stories and NLU examples use with each entity, the intents of ``from_intent`` and
``from_text`` mappings (less those the stories answer with something else while the form is
active, and the form's ``ignored_intents``). A slot no mapping can fill that way (``custom``
mappings, say) ends the copy's unfolding for that run: the original story still teaches the rest.

The originals stay in the training data; copies are extra stories.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.project.domain import ACTION_LISTEN, REQUESTED_SLOT, Domain, Form, Slot, SlotMapping
from chatbot.project.stories import ActiveLoopStep, SlotStep, Story, UserStep
from chatbot.project.training_data import NLUData
from training.story_events import TrainingConversation

MAX_FILLERS_PER_SLOT = 12  # user turns a copy draws from, per slot


@dataclass(frozen=True)
class Filler:
    """A user turn that fills a slot, and the value the slot gets."""

    intent: str
    entities: tuple[dict[str, Any], ...]
    value: Any


@dataclass
class _Usage:
    """What the project shows of entities and intents."""

    intents_with_entity: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    values_of_entity: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def note(self, intent: str | None, entities: Sequence[Any]) -> None:
        for annotation in entities:
            if intent and intent not in self.intents_with_entity[annotation.entity]:
                self.intents_with_entity[annotation.entity].append(intent)
            if annotation.value not in self.values_of_entity[annotation.entity]:
                self.values_of_entity[annotation.entity].append(annotation.value)


def nlu_usage(nlu: NLUData) -> dict[str, dict[str, list[str]]]:
    """What form training reads from the NLU data: the intents that carry each entity and the
    entity's values, in their order. The dialogue policies' fingerprint holds it
    (``training.reuse``): keep it in step with ``_usage``."""
    usage = _usage((), nlu)
    return {
        "intents_with_entity": dict(usage.intents_with_entity),
        "values_of_entity": dict(usage.values_of_entity),
    }


def _usage(stories: Sequence[Story], nlu: NLUData | None) -> _Usage:
    usage = _Usage()
    for story in stories:
        for step in story.steps:
            if isinstance(step, UserStep):
                usage.note(step.intent, step.entities)
    for example in nlu.examples if nlu is not None else ():
        usage.note(example.base_intent, example.entities)
    return usage


def answered_intents(conversations: Sequence[TrainingConversation], forms: set[str]) -> set[str]:
    """Intents of user turns that stories or rules answer with an action other than a form (a
    greeting, a bot challenge, a stop mid-form): such an intent has an answer of its own, so it is
    not drawn as "any intent" that fills a slot."""
    found: set[str] = set()
    for conv in conversations:
        pending: str | None = None  # the intent of the last user turn
        for event in conv.events:
            kind = event.get("event")
            if kind == "user":
                pending = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            elif kind == "action" and event["name"] != ACTION_LISTEN and pending is not None:
                if event["name"] not in forms:
                    found.add(pending)
                pending = None
    return found


def _applies(mapping: SlotMapping, form: str, slot: str) -> bool:
    if not mapping.conditions:
        return True
    return any(
        c.active_loop == form and c.requested_slot in (None, slot) for c in mapping.conditions
    )


def _coerce(slot: Slot, value: Any) -> Any:
    if slot.type == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return slot.min_value
    if slot.type == "bool" and not isinstance(value, bool):
        return str(value).lower() in ("true", "yes", "1")
    if slot.type == "categorical" and slot.values and value not in slot.values:
        return slot.values[0]
    return value


def fillers(
    domain: Domain, form: Form, slot_name: str, usage: _Usage, excluded: set[str]
) -> list[Filler]:
    """User turns that fill ``slot_name`` while ``form`` asks for it (see the module's notes)."""
    slot = domain.slots.get(slot_name)
    if slot is None:
        return []
    banned = set(form.ignored_intents)
    out: list[Filler] = []
    for mapping in slot.mappings:
        if not _applies(mapping, form.name, slot_name):
            continue
        allowed = [i for i in mapping.intent if i in domain.intents and i not in banned]
        if mapping.type == "from_entity" and mapping.entity:
            entity = mapping.entity
            # The intents the project shows with the entity; else any intent the stories do not
            # answer otherwise during a form (the entity is what fills the slot).
            intents = allowed or [
                i for i in usage.intents_with_entity.get(entity, []) if i in domain.intents
            ]
            intents = intents or [i for i in domain.intents if i not in excluded]
            intents = [i for i in intents if i not in mapping.not_intent and i not in banned]
            values = usage.values_of_entity.get(entity) or list(slot.values) or [entity]
            for intent in intents:
                for value in values[:3]:
                    annotation: dict[str, Any] = {"entity": entity, "value": value}
                    if mapping.role:
                        annotation["role"] = mapping.role
                    if mapping.group:
                        annotation["group"] = mapping.group
                    out.append(Filler(intent, (annotation,), _coerce(slot, value)))
        elif mapping.type == "from_intent":
            for intent in allowed:
                out.append(Filler(intent, (), _coerce(slot, mapping.value)))
        elif mapping.type == "from_text":
            intents = allowed or [
                i
                for i in domain.intents
                if i not in mapping.not_intent and i not in banned and i not in excluded
            ]
            for intent in intents:
                out.append(Filler(intent, (), _coerce(slot, f"<{intent}>")))
    unique = list({repr(f): f for f in out}.values())
    return unique[:MAX_FILLERS_PER_SLOT]


def _user(filler: Filler) -> Event:
    parse = {
        "intent": {"name": filler.intent, "confidence": 1.0},
        "entities": list(filler.entities),
    }
    return ev.user(None, parse)  # type: ignore[arg-type]


class _Copy:
    """One copy of a story being written, with the slots as they stand."""

    def __init__(self, source: TrainingConversation, index: int) -> None:
        self.conv = TrainingConversation(
            f"{source.name} (form path {index + 1})", source.source, generated=True
        )
        self.slots: dict[str, Any] = {}

    def add(self, event: Event, target: bool = False) -> None:
        self.conv.add(event, target, None)
        if event.get("event") == "slot":
            self.slots[str(event["name"])] = event.get("value")

    def missing(self, form: Form) -> list[str]:
        return [s for s in form.required_slots if self.slots.get(s) is None]


def _next_kind(events: Sequence[Event], start: int) -> Event | None:
    """The first event from ``start`` on that is not a slot (what the story does next)."""
    for event in events[start:]:
        if event.get("event") != "slot":
            return event
    return None


def unfold_form_paths(
    stories: Sequence[TrainingConversation],
    domain: Domain,
    *,
    rules: Sequence[TrainingConversation] = (),
    project_stories: Sequence[Story] = (),
    nlu: NLUData | None = None,
    copies: int = 4,
    seed: int = 42,
) -> list[TrainingConversation]:
    """Copies of the stories in which forms run, with the form's turns spelled out."""
    forms = domain.forms
    if not forms or copies <= 0:
        return []
    usage = _usage(project_stories, nlu)
    excluded = answered_intents([*stories, *rules], set(forms))
    rng = random.Random(seed)
    cache: dict[tuple[str, str], list[Filler]] = {}
    starts: dict[tuple[str, str, str], int] = {}

    def options(form: Form, slot_name: str) -> list[Filler]:
        key = (form.name, slot_name)
        if key not in cache:
            cache[key] = fillers(domain, form, slot_name, usage, excluded)
        return cache[key]

    out: list[TrainingConversation] = []
    for conv in stories:
        if not any(e.get("event") == "action" and e.get("name") in forms for e in conv.events):
            continue
        for index in range(copies):
            copy = _Copy(conv, index)
            events = conv.events
            active: str | None = None
            i = 0
            while i < len(events):
                event, target = events[i], conv.targets[i]
                activates = _activated_form(events, i, forms, active)
                if activates is not None and index % 2 == 1:
                    # Half the copies give some (every fourth: all) of the form's slots that the
                    # activating message can carry in it.
                    share = 1.0 if index % 4 == 3 else 0.5
                    event = _prefilled(domain, forms[activates], event, usage, rng, share)
                copy.add(event, target)
                i += 1
                kind = event.get("event")
                if kind == "active_loop":
                    active = event.get("name")
                elif kind == "user":
                    for extracted in _extracted(domain, event, active, copy.slots):
                        copy.add(extracted)
                if not (kind == "action" and event.get("name") in forms):
                    continue
                form = forms[str(event["name"])]
                # What the form did when it ran (its slots, its activation) stays as it is.
                while i < len(events) and (
                    events[i].get("event") == "slot"
                    or (events[i].get("event") == "active_loop" and events[i].get("name"))
                ):
                    if events[i].get("event") == "active_loop":
                        active = events[i].get("name")
                    copy.add(events[i], conv.targets[i])
                    i += 1
                if active != form.name:
                    continue
                missing = copy.missing(form)
                if not missing:
                    continue
                copy.add(ev.slot(REQUESTED_SLOT, missing[0]))
                following = _next_kind(events, i)
                completed = following is not None and following.get("event") == "active_loop"
                if not completed or not all(options(form, s) for s in missing):
                    continue  # an interruption follows (or a slot we cannot fill): as written
                for position, slot_name in enumerate(missing):
                    if position:
                        copy.add(ev.slot(REQUESTED_SLOT, slot_name))
                    # Round robin from a random start: the copies share out every filler.
                    choices = options(form, slot_name)
                    start = starts.setdefault(
                        (conv.name, form.name, slot_name), rng.randrange(len(choices))
                    )
                    filler = choices[(start + index) % len(choices)]
                    copy.add(ev.action(ACTION_LISTEN), True)
                    copy.add(_user(filler))
                    copy.add(ev.slot(slot_name, filler.value))
                    copy.add(ev.action(form.name), True)
            out.append(copy.conv)
    return out


def _extracted(
    domain: Domain, user: Event, active: str | None, slots: dict[str, Any]
) -> list[Event]:
    """The slot events that extraction would add for a user turn's entities (``from_entity``
    mappings without conditions, or whose conditions hold), where the story has none."""
    parse = user.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    out: list[Event] = []
    for entity in parse.get("entities") or []:
        for slot in domain.slots.values():
            for mapping in slot.mappings:
                if mapping.type != "from_entity" or mapping.entity != entity.get("entity"):
                    continue
                if mapping.intent and intent not in mapping.intent:
                    continue
                if intent in mapping.not_intent:
                    continue
                requested = slots.get(REQUESTED_SLOT)
                if mapping.conditions and not any(
                    c.active_loop == active and c.requested_slot in (None, requested)
                    for c in mapping.conditions
                ):
                    continue
                value = _coerce(slot, entity.get("value"))
                if slots.get(slot.name) != value:
                    out.append(ev.slot(slot.name, value))
                break
    return out


def _activated_form(
    events: Sequence[Event], i: int, forms: dict[str, Form], active: str | None
) -> str | None:
    """The form that the user turn ``events[i]`` activates (its next action), if any."""
    if events[i].get("event") != "user":
        return None
    for event in events[i + 1 :]:
        if event.get("event") == "action":
            name = str(event["name"])
            return name if name in forms and name != active else None
    return None


def _prefilled(
    domain: Domain, form: Form, user: Event, usage: _Usage, rng: random.Random, share: float
) -> Event:
    """``user`` with entities for some of ``form``'s slots that a ``from_entity`` mapping without
    conditions would fill from it ("a table for 4 at an italian place")."""
    parse = dict(user.get("parse_data") or {})
    intent = (parse.get("intent") or {}).get("name")
    entities = list(parse.get("entities") or [])
    have = {e.get("entity") for e in entities}
    for slot_name in form.required_slots:
        slot = domain.slots.get(slot_name)
        for mapping in slot.mappings if slot is not None else ():
            if mapping.type != "from_entity" or mapping.conditions or mapping.entity in have:
                continue
            if (mapping.intent and intent not in mapping.intent) or intent in mapping.not_intent:
                continue
            if rng.random() < share:
                values = usage.values_of_entity.get(str(mapping.entity)) or [str(mapping.entity)]
                entities.append({"entity": mapping.entity, "value": rng.choice(values)})
                have.add(mapping.entity)
            break
    parse["entities"] = entities
    return {**user, "parse_data": parse}


@dataclass(frozen=True)
class _Interjection:
    """A rule that answers one user turn wherever its conditions hold ("say goodbye anytime")."""

    user: Event
    actions: tuple[str, ...]
    active_loop: str | bool | None  # the loop it needs (None: no active loop); False: any


def _interjections(rules: Sequence[TrainingConversation], forms: set[str]) -> list[_Interjection]:
    out: list[_Interjection] = []
    for rule in rules:
        source = rule.source
        if source.conversation_start:
            continue
        needs: str | bool | None = False
        if any(isinstance(c, SlotStep) for c in source.conditions):
            continue
        loops = [c for c in source.conditions if isinstance(c, ActiveLoopStep)]
        if loops:
            needs = loops[0].name
        events = list(rule.events)
        if isinstance(needs, str):
            # A rule inside a form ends with the form going on (training.story_events adds it);
            # the copies add that themselves.
            tail = [e for e in events if e.get("event") != "action" or e["name"] != ACTION_LISTEN]
            if (
                len(tail) >= 2
                and tail[-2].get("event") == "action"
                and tail[-2]["name"] == needs
                and tail[-1] == {**tail[-1], "event": "active_loop", "name": needs}
            ):
                cut = events.index(tail[-2])
                events = events[:cut]
        body = [e for e in events if e.get("event") in ("user", "action")]
        while body and body[0].get("event") == "action" and body[0]["name"] == ACTION_LISTEN:
            body = body[1:]
        if body and body[-1].get("event") == "action" and body[-1]["name"] == ACTION_LISTEN:
            body = body[:-1]
        if len(body) < 2 or body[0].get("event") != "user":
            continue
        actions = [str(e.get("name")) for e in body[1:]]
        if any(e.get("event") != "action" for e in body[1:]) or any(a in forms for a in actions):
            continue
        first = next(i for i, e in enumerate(events) if e.get("event") in ("user", "action"))
        if any(e.get("event") not in ("user", "action") for e in events[first:]):
            continue  # the rule sets slots or loops itself: not a plain interjection
        out.append(_Interjection(body[0], tuple(actions), needs))
    return out


def rules_in_stories(
    stories: Sequence[TrainingConversation],
    rules: Sequence[TrainingConversation],
    domain: Domain,
    *,
    copies: int = 2,
    seed: int = 42,
) -> list[TrainingConversation]:
    """Copies of the stories with a rule that applies anywhere put in where the bot listens.

    RulePolicy matches a rule's few features in any conversation; the LSTM tracker reads whole
    conversations and learns "anywhere" only from seeing it. So each copy takes a listening point
    of a story and lets the user say what a rule answers there (a rule conditioned on an active
    form only where that form is active), then the story goes on. Inside a form, the form runs
    again after the rule's answer and asks for the same slot, as it does at run time.
    """
    forms = set(domain.forms)
    interjections = _interjections(rules, forms)
    if not interjections or copies <= 0:
        return []
    rng = random.Random(seed)
    out: list[TrainingConversation] = []
    for conv in stories:
        # Listening points: a predicted listen; the loop and requested slot there.
        points: list[tuple[int, str | None, Any]] = []
        active: str | None = None
        requested: Any = None
        for i, (event, target) in enumerate(zip(conv.events, conv.targets, strict=True)):
            kind = event.get("event")
            if kind == "active_loop":
                active = event.get("name")
            elif kind == "slot" and event.get("name") == REQUESTED_SLOT:
                requested = event.get("value")
            elif kind == "action" and event["name"] == ACTION_LISTEN and target:
                points.append((i, active, requested))
        for index in range(copies):
            if not points:
                break
            at, loop, asked = points[rng.randrange(len(points))]
            fitting = [r for r in interjections if r.active_loop is False or r.active_loop == loop]
            if not fitting:
                continue
            pick = fitting[rng.randrange(len(fitting))]
            copy = TrainingConversation(
                f"{conv.name} (rule {index + 1})", conv.source, generated=True
            )
            for event, target, mentioned in zip(
                conv.events[: at + 1], conv.targets[: at + 1], conv.mentioned[: at + 1], strict=True
            ):
                copy.add(event, target, mentioned)
            copy.add(dict(pick.user))
            for action in pick.actions:
                copy.add(ev.action(action), True)
            if loop is not None:
                copy.add(ev.action(loop), True)
                if asked is not None:
                    copy.add(ev.slot(REQUESTED_SLOT, asked))
            copy.add(ev.action(ACTION_LISTEN), True)
            for event, target, mentioned in zip(
                conv.events[at + 1 :], conv.targets[at + 1 :], conv.mentioned[at + 1 :], strict=True
            ):
                copy.add(event, target, mentioned)
            out.append(copy)
    return out
