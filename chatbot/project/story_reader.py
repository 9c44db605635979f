"""Reading ``stories:`` and ``rules:`` (Rasa 3.x stories.yml, rules.yml and tests/test_*.yml).

Every story and step keeps its origin (file, line). Checkpoints and ``or`` are kept as steps;
resolving them into conversations is the story graph's job.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.nlu.intent_payload import parse_intent_payload
from chatbot.project.domain import ACTION_DEACTIVATE_LOOP, Origin
from chatbot.project.nlu_reader import parse_annotated_text
from chatbot.project.stories import (
    ANY_VALUE,
    ActionStep,
    ActiveLoopStep,
    CheckpointStep,
    OrStep,
    SlotStep,
    Step,
    Story,
    StoryKind,
    UserStep,
)
from chatbot.project.training_data import EntityAnnotation
from chatbot.project.yaml_io import (
    close_matches_hint,
    describe_type,
    expect,
    line_of,
    load_yaml,
    scalar_text,
    to_plain,
    unknown_keys,
)

logger = logging.getLogger(__name__)

# Stories of Rasa 1 and 2 end a form with this name; Rasa 3 maps it to action_deactivate_loop.
LEGACY_DEACTIVATE_FORM = "action_deactivate_form"

_STORY_KEYS = ("story", "steps", "metadata")
_RULE_KEYS = ("rule", "steps", "metadata", "condition", "conversation_start", "wait_for_user_input")
# Which keys may go together in one step, by the key that decides the step's kind (Rasa's order).
_STEP_KINDS: dict[str, tuple[str, ...]] = {
    "intent": ("intent", "user", "entities"),
    "user": ("intent", "user", "entities"),
    "or": ("or",),
    "action": ("action",),
    "bot": ("bot",),
    "checkpoint": ("checkpoint", "slot_was_set"),
    "slot_was_set": ("slot_was_set",),
    "active_loop": ("active_loop",),
}
STEP_KEYS = (*dict.fromkeys(k for keys in _STEP_KINDS.values() for k in keys), "metadata")


def read_stories(path: Path, *, test: bool = False) -> tuple[list[Story], list[Story]]:
    """The stories and rules of one file (``test``: as test stories); all problems raised."""
    data = load_yaml(path)
    file = str(path)
    stories: list[Story] = []
    rules: list[Story] = []
    errors: list[ProjectError] = []
    if isinstance(data, dict):
        for key, into in (("stories", stories), ("rules", rules)):
            kind: StoryKind = "test" if test else ("story" if key == "stories" else "rule")
            found, found_errors = stories_from_list(
                data.get(key),
                file,
                kind,
                title="rule" if key == "rules" else "story",
                line=line_of(data, key),
            )
            into.extend(found)
            errors.extend(found_errors)
    if errors:
        raise ProjectErrors(errors)
    return stories, rules


def stories_from_list(
    items: Any,
    file: str | None,
    kind: StoryKind,
    *,
    title: str | None = None,
    line: int | None = None,
) -> tuple[list[Story], list[ProjectError]]:
    """Parsed ``stories:`` or ``rules:`` entries; bad entries are errors, the rest are kept.

    ``title`` is the key naming each entry (``story`` or ``rule``; by default from ``kind``;
    test files may hold both).
    """
    title = title or ("rule" if kind == "rule" else "story")
    plural = f"{title}s" if title == "rule" else "stories"
    if items is None:
        return [], []
    try:
        expect(items, list, what=f"'{plural}'", file=file, line=line, key=plural)
    except ProjectError as e:
        return [], [e]
    stories: list[Story] = []
    errors: list[ProjectError] = []
    for index, item in enumerate(items):
        item_line = line_of(items, index) or line
        try:
            story = _read_story(item, kind, title, file=file, line=item_line, errors=errors)
        except ProjectError as e:
            errors.append(e)
            continue
        if story is not None:
            stories.append(story)
    return stories, errors


def _read_story(
    item: Any,
    kind: StoryKind,
    title: str,
    *,
    file: str | None,
    line: int | None,
    errors: list[ProjectError],
) -> Story | None:
    expect(item, dict, what=f"each {title}", file=file, line=line)
    is_rule = title == "rule"
    bad = unknown_keys(item, _RULE_KEYS if is_rule else _STORY_KEYS, file=file, what=f"a {title}")
    if bad:
        raise bad[0]
    name = item.get(title)
    if not isinstance(name, (str, int, float)) or isinstance(name, bool) or not str(name).strip():
        raise ProjectError(
            f"each {title} needs a name under '{title}:'",
            file=file,
            line=line,
            key=title,
            hint=f"Start it with '- {title}: <name>'",
        )
    name = str(name).strip()
    steps_data = item.get("steps")
    if not steps_data:
        logger.warning("%s:%s: %s '%s' has no steps and is skipped", file, line, title, name)
        return None
    expect(
        steps_data,
        list,
        what=f"'steps' of {title} '{name}'",
        file=file,
        line=line_of(item, "steps"),
        key="steps",
    )
    steps = _read_steps(steps_data, file=file, in_rule=is_rule, errors=errors)
    conditions: list[Step] = []
    flags = {"conversation_start": False, "wait_for_user_input": True}
    if is_rule:
        conditions = _read_conditions(
            item.get("condition"), file=file, line=line_of(item, "condition"), errors=errors
        )
        for key, default in flags.items():
            value = item.get(key, default)
            flags[key] = expect(
                default if value is None else value,
                bool,
                what=f"'{key}' of rule '{name}'",
                file=file,
                line=line_of(item, key),
                key=key,
            )
    return Story(
        name=name,
        kind=kind,
        steps=tuple(steps),
        conditions=tuple(conditions),
        conversation_start=flags["conversation_start"],
        wait_for_user_input=flags["wait_for_user_input"],
        origin=Origin(file, line),
    )


def _read_steps(
    data: list[Any], *, file: str | None, in_rule: bool, errors: list[ProjectError]
) -> list[Step]:
    steps: list[Step] = []
    for index, item in enumerate(data):
        step_line = line_of(data, index)
        try:
            step = read_step(item, file=file, line=step_line)
        except ProjectError as e:
            errors.append(e)
            continue
        if step is None:
            continue
        if in_rule and isinstance(step, CheckpointStep):
            errors.append(
                ProjectError(
                    "rules cannot use checkpoints",
                    file=file,
                    line=step_line,
                    key="checkpoint",
                    value=step.name,
                    hint="Use a story, or a rule 'condition:'",
                )
            )
            continue
        steps.append(step)
    return steps


def _read_conditions(
    data: Any, *, file: str | None, line: int | None, errors: list[ProjectError]
) -> list[Step]:
    if data is None:
        return []
    try:
        expect(data, list, what="'condition'", file=file, line=line, key="condition")
    except ProjectError as e:
        errors.append(e)
        return []
    conditions: list[Step] = []
    for index, item in enumerate(data):
        step_line = line_of(data, index) or line
        try:
            step = read_step(item, file=file, line=step_line)
        except ProjectError as e:
            errors.append(e)
            continue
        if step is None:
            continue
        if not isinstance(step, (SlotStep, ActiveLoopStep)):
            errors.append(
                ProjectError(
                    "a rule condition can only be slot_was_set or active_loop",
                    file=file,
                    line=step_line,
                    key=next(iter(item), None) if isinstance(item, dict) else None,
                    hint="Move other steps under 'steps:'",
                )
            )
            continue
        conditions.append(step)
    return conditions


def read_step(item: Any, *, file: str | None, line: int | None) -> Step | None:
    """One step (``None`` for a step holding only ``metadata``)."""
    if not isinstance(item, dict):
        raise ProjectError(
            f"each step must be a mapping such as '- intent: greet', found {describe_type(item)}",
            file=file,
            line=line,
            value=item if isinstance(item, str) else None,
        )
    for key in item:
        if key not in STEP_KEYS:
            raise ProjectError(
                "unknown step key",
                file=file,
                line=line_of(item, key),
                key=str(key),
                hint=close_matches_hint(key, STEP_KEYS, "valid step keys"),
            )
    kind = next((k for k in _STEP_KINDS if k in item), None)
    if kind is None:
        return None  # only ``metadata``
    allowed = (*_STEP_KINDS[kind], "metadata")
    for key in item:
        if key not in allowed:
            raise ProjectError(
                f"'{key}' cannot be in the same step as '{kind}'",
                file=file,
                line=line_of(item, key),
                key=str(key),
                hint="Make it a step of its own",
            )
    origin = Origin(file, line)
    if kind in ("intent", "user"):
        return _read_user_step(item, file=file, origin=origin)
    if kind == "or":
        return _read_or(item, file=file, origin=origin)
    if kind in ("action", "bot"):
        value = item[kind]
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(
                f"'{kind}' needs "
                + ("an action name" if kind == "action" else "the text the bot says"),
                file=file,
                line=line_of(item, kind),
                key=kind,
            )
        if kind == "action":
            name = value.strip()
            if name == LEGACY_DEACTIVATE_FORM:  # Rasa 3 reads it as action_deactivate_loop too
                logger.warning(
                    "%s%s is the Rasa 1 name of %s; read as %s",
                    origin.prefix,
                    name,
                    ACTION_DEACTIVATE_LOOP,
                    ACTION_DEACTIVATE_LOOP,
                )
                name = ACTION_DEACTIVATE_LOOP
            return ActionStep(name=name, origin=origin)
        return ActionStep(text=value.strip(), origin=origin)
    if kind == "checkpoint":
        name = item["checkpoint"]
        if not isinstance(name, str) or not name.strip():
            raise ProjectError("'checkpoint' needs a name", file=file, line=line, key="checkpoint")
        slots: tuple[tuple[str, Any], ...] = ()
        if "slot_was_set" in item:
            slots = _read_slots(
                item["slot_was_set"], file=file, line=line_of(item, "slot_was_set"), named_only=True
            )
        return CheckpointStep(name.strip(), origin, slots)
    if kind == "slot_was_set":
        return SlotStep(_read_slots(item["slot_was_set"], file=file, line=line), origin)
    name = item["active_loop"]
    if name is not None and not isinstance(name, str):
        raise ProjectError(
            f"'active_loop' must be a form name or null, found {describe_type(name)}",
            file=file,
            line=line,
            key="active_loop",
        )
    return ActiveLoopStep(name.strip() if name else None, origin)


def _read_user_step(item: dict[str, Any], *, file: str | None, origin: Origin) -> UserStep:
    intent = item.get("intent")
    if "intent" in item:
        if not isinstance(intent, str) or not intent.strip():
            raise ProjectError(
                "'intent' needs an intent name",
                file=file,
                line=line_of(item, "intent"),
                key="intent",
            )
        intent = intent.strip().removeprefix("/")
    text = None
    entities: tuple[EntityAnnotation, ...] = ()
    if "user" in item:
        raw = item["user"]
        if not isinstance(raw, str) or not raw.strip():
            raise ProjectError(
                "'user' needs the text of the user's message",
                file=file,
                line=line_of(item, "user"),
                key="user",
            )
        payload = parse_intent_payload(raw) if raw.strip().startswith("/") else None
        if payload is not None:
            # A shortcut (`user: '/greet{"name": "Ann"}'`): its intent and entities, as Rasa
            # reads them; the text stays as written.
            text = raw.strip()
            intent = intent or payload["intent"]["name"]
            entities = tuple(
                EntityAnnotation(0, 0, scalar_text(e.get("value")), str(e["entity"]))
                for e in payload.get("entities") or []
                if not isinstance(e.get("value"), (dict, list))
            )
        else:
            # As Rasa's story reader (the same entities parser as its NLU's): an annotation it
            # does not read is plain text, with a warning.
            annotated = parse_annotated_text(
                raw.strip(), file=file, line=line_of(item, "user"), strict=False
            )
            text, entities = annotated.text, annotated.entities
    if "user" not in item and item.get("entities") is not None:
        # With `user:` text, Rasa takes the entities from its annotations only.
        entities = _read_entities(item["entities"], file=file, line=line_of(item, "entities"))
    return UserStep(intent=intent, entities=entities, text=text, origin=origin)


def _read_entities(
    data: Any, *, file: str | None, line: int | None
) -> tuple[EntityAnnotation, ...]:
    """``[{name: value}]``, ``[name]`` or ``[{entity: e, value: v, role: r, group: g}]``."""
    expect(data, list, what="'entities'", file=file, line=line, key="entities")
    entities: list[EntityAnnotation] = []
    for index, item in enumerate(data):
        at = line_of(data, index) or line
        if isinstance(item, str):
            entities.append(EntityAnnotation(0, 0, "", item))
            continue
        expect(item, dict, what="each entry of 'entities'", file=file, line=at)
        role, group = item.get("role"), item.get("group")
        for key in ("role", "group"):
            if item.get(key) is not None:
                expect(item[key], str, what=f"'{key}'", file=file, line=line_of(item, key), key=key)
        if isinstance(item.get("entity"), str) and set(item) <= {
            "entity",
            "value",
            "role",
            "group",
        }:
            pairs = [(item["entity"], item.get("value"))]
        else:
            pairs = [(k, v) for k, v in item.items() if k not in ("role", "group")]
        if not pairs:
            raise ProjectError(
                "an entry of 'entities' names no entity", file=file, line=at, key="entities"
            )
        for entity, value in pairs:
            if isinstance(value, (dict, list)):
                raise ProjectError(
                    f"the value of entity '{entity}' must be a single value",
                    file=file,
                    line=line_of(item, entity) or at,
                    key=str(entity),
                )
            text_value = "" if value is None else scalar_text(value)
            entities.append(EntityAnnotation(0, 0, text_value, str(entity), role, group))
    return tuple(entities)


def _read_or(item: dict[str, Any], *, file: str | None, origin: Origin) -> OrStep:
    data = item["or"]
    line = line_of(item, "or")
    expect(data, list, what="'or'", file=file, line=line, key="or")
    if not data:
        raise ProjectError("'or' needs at least one alternative", file=file, line=line, key="or")
    alternatives: list[UserStep | SlotStep] = []
    for index, alternative in enumerate(data):
        at = line_of(data, index) or line
        step = read_step(alternative, file=file, line=at)
        if not isinstance(step, (UserStep, SlotStep)):
            raise ProjectError(
                "an 'or' alternative can only be intent, user or slot_was_set",
                file=file,
                line=at,
                key=next(iter(alternative), None) if isinstance(alternative, dict) else "or",
            )
        alternatives.append(step)
    return OrStep(tuple(alternatives), origin)


def _read_slots(
    data: Any, *, file: str | None, line: int | None, named_only: bool = False
) -> tuple[tuple[str, Any], ...]:
    """``[{name: value}, name]``; a bare name means "set to some value" (``ANY_VALUE``)."""
    expect(data, list, what="'slot_was_set'", file=file, line=line, key="slot_was_set")
    if not data:
        raise ProjectError("'slot_was_set' names no slot", file=file, line=line, key="slot_was_set")
    slots: list[tuple[str, Any]] = []
    for index, item in enumerate(data):
        at = line_of(data, index) or line
        if isinstance(item, str) and not named_only:
            slots.append((item, ANY_VALUE))
            continue
        expect(
            item,
            dict if named_only else (dict, str),
            what="each entry of 'slot_was_set'",
            file=file,
            line=at,
        )
        for name, value in item.items():
            slots.append((str(name), to_plain(value)))
    return tuple(slots)
