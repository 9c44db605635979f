"""Reading the sections of one domain file into ``DomainParts``: named items with their origins.

``chatbot.project.domain_reader`` merges the parts of several files and builds the ``Domain``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import (
    NO_ORIGIN,
    Entity,
    Form,
    Origin,
    ResponseVariation,
    Slot,
    SlotMapping,
)
from chatbot.project.domain_responses import read_responses
from chatbot.project.domain_slots import read_mappings, read_slots
from chatbot.project.yaml_io import (
    as_name_list,
    expect,
    line_of,
    misspelled_keys,
    to_plain,
    unknown_keys,
)
from chatbot.ranges import finite_number

logger = logging.getLogger(__name__)

_SETTING_KEYS = ("session_expiration_time", "carry_over_slots_to_new_session")


@dataclass(frozen=True)
class _IntentSpec:
    """An intent as written; ``ignore_entities`` is resolved once all entities are known."""

    name: str
    use_entities: bool | tuple[str, ...] = True
    ignore_entities: tuple[str, ...] | None = None
    origin: Origin = NO_ORIGIN


@dataclass
class DomainParts:
    """What one or more domain files declare, each item with its origin, before merging."""

    intents: dict[str, _IntentSpec] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, tuple[ResponseVariation, ...]] = field(default_factory=dict)
    response_origins: dict[str, Origin] = field(default_factory=dict)
    actions: dict[str, Origin] = field(default_factory=dict)
    action_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    # session_config keys and ``store_entities_as_slots`` as written: value and origin.
    settings: dict[str, tuple[Any, Origin]] = field(default_factory=dict)
    action_texts: dict[str, Origin] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # Rasa 2 forms' slot mappings (``required_slots: {slot: [mappings]}``), already read as the
    # slots' mappings with the form's conditions: (form, slot, mappings), added to the slots.
    form_mappings: list[tuple[str, str, tuple[SlotMapping, ...]]] = field(default_factory=list)
    # A Rasa 2 file (``version: "2.0"``): its slots without ``mappings`` fill from the entity of
    # their name, as Rasa 2's ``auto_fill`` (on by default) did: slot -> where it is written.
    rasa2: bool = False
    auto_fill: dict[str, Origin] = field(default_factory=dict)


def add_item(
    target: dict[str, Any],
    name: str,
    item: Any,
    origin: Origin,
    what: str,
    errors: list[ProjectError],
    *,
    known_origin: Origin | None = None,
) -> None:
    """Add ``item`` under ``name``; the same content twice is fine, different content an error."""
    if name not in target:
        target[name] = item
        return
    if without_origins(target[name]) == without_origins(item):
        return
    first = known_origin if known_origin is not None else getattr(target[name], "origin", None)
    place = describe_origin(first) if first is not None else "elsewhere"
    errors.append(
        ProjectError(
            f"{what} '{name}' is defined twice with different content",
            file=origin.file,
            line=origin.line,
            key=name,
            hint=f"It is also defined at {place}; keep one definition",
        )
    )


def describe_origin(origin: Origin) -> str:
    if origin.line is None:
        return origin.file or "another place"
    return f"{origin.file or '<data>'}:{origin.line}"


def without_origins(value: Any) -> Any:
    """``value`` with every ``origin`` inside set to ``NO_ORIGIN`` (to compare content)."""
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: without_origins(getattr(value, f.name)) for f in fields(value)}
        if "origin" in changes:
            changes["origin"] = NO_ORIGIN
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(without_origins(v) for v in value)
    if isinstance(value, dict):
        return {k: without_origins(v) for k, v in value.items()}
    return value


def _single_key(item: Any, *, what: str, file: str | None, line: int | None) -> tuple[str, Any]:
    """``- name`` or ``- name: {props}`` in a list; returns (name, props or None)."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and len(item) == 1:
        name, props = next(iter(item.items()))
        if isinstance(name, str):
            return name, props
    raise ProjectError(
        f"each entry of {what} must be a name or 'name: {{...}}'",
        file=file,
        line=line,
        value=item if isinstance(item, (str, int, float, bool)) else None,
    )


def _entries(
    value: Any, what: str, file: str | None, line: int | None, errors: list[ProjectError]
) -> Iterable[tuple[str, Any, int | None]]:
    expect(value, list, what=f"'{what}'", file=file, line=line, key=what)
    for index, item in enumerate(value):
        item_line = line_of(value, index) or line
        try:
            name, props = _single_key(item, what=f"'{what}'", file=file, line=item_line)
        except ProjectError as e:
            errors.append(e)
            continue
        yield name, props, item_line


def _read_intents(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    errors: list[ProjectError] = []
    for name, props, item_line in _entries(value, "intents", file, line, errors):
        try:
            spec = _read_intent(name, props, file, item_line)
        except ProjectError as e:
            errors.append(e)
            continue
        add_item(parts.intents, name, spec, spec.origin, "intent", errors)
    return errors


def _read_intent(name: str, props: Any, file: str | None, line: int | None) -> _IntentSpec:
    origin = Origin(file, line)
    if props is None:
        return _IntentSpec(name, origin=origin)
    expect(props, dict, what=f"the properties of intent '{name}'", file=file, line=line, key=name)
    allowed = ("use_entities", "ignore_entities", "is_retrieval_intent", "triggers")
    errors = unknown_keys(props, allowed, file=file, what=f"intent '{name}'")
    if errors:
        raise errors[0]
    if "triggers" in props:  # Rasa 1's MappingPolicy; Rasa 3 loads it and does nothing with it
        logger.warning(
            "%s:%s: intent '%s' triggers %r: not read (Rasa 1's MappingPolicy); a rule does it: "
            "`- rule: ...  steps: [intent: %s, action: %s]`",
            file,
            line_of(props, "triggers") or line,
            name,
            props["triggers"],
            name,
            props["triggers"],
        )
    if "use_entities" in props and "ignore_entities" in props:
        raise ProjectError(
            f"intent '{name}' has both use_entities and ignore_entities",
            file=file,
            line=line_of(props, "ignore_entities"),
            key="ignore_entities",
            hint="Use one of them",
        )
    use: bool | tuple[str, ...] = True
    raw_use = props.get("use_entities", True)
    if isinstance(raw_use, bool):
        use = raw_use
    elif raw_use is not None:
        use = as_name_list(
            raw_use,
            what="'use_entities'",
            file=file,
            line=line_of(props, "use_entities"),
            key="use_entities",
        )
    ignore = None
    if props.get("ignore_entities") is not None:
        ignore = as_name_list(
            props["ignore_entities"],
            what="'ignore_entities'",
            file=file,
            line=line_of(props, "ignore_entities"),
            key="ignore_entities",
        )
    return _IntentSpec(name, use_entities=use, ignore_entities=ignore, origin=origin)


def _read_entities(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    errors: list[ProjectError] = []
    for name, props, item_line in _entries(value, "entities", file, line, errors):
        origin = Origin(file, item_line)
        entity = Entity(name, origin=origin)
        if props is not None:
            try:
                expect(
                    props,
                    dict,
                    what=f"the properties of entity '{name}'",
                    file=file,
                    line=item_line,
                    key=name,
                )
                bad = unknown_keys(
                    props,
                    ("roles", "groups", "influence_conversation"),
                    file=file,
                    what=f"entity '{name}'",
                )
                if bad:
                    raise bad[0]
                names = {
                    key: as_name_list(
                        props.get(key),
                        what=f"'{key}'",
                        file=file,
                        line=line_of(props, key),
                        key=key,
                    )
                    for key in ("roles", "groups")
                }
                influence = props.get("influence_conversation", True)
                expect(
                    influence,
                    bool,
                    what="'influence_conversation'",
                    file=file,
                    line=line_of(props, "influence_conversation"),
                    key="influence_conversation",
                )
                entity = Entity(name, names["roles"], names["groups"], influence, origin)
            except ProjectError as e:
                errors.append(e)
                continue
        add_item(parts.entities, name, entity, origin, "entity", errors)
    return errors


def _read_slots_section(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    expect(value, dict, what="'slots'", file=file, line=line, key="slots")
    slots, errors = read_slots(value, file=file, rasa2=parts.rasa2)
    for name, slot in slots.items():
        add_item(parts.slots, name, slot, slot.origin, "slot", errors)
        spec = value.get(name) or {}
        if parts.rasa2 and "mappings" not in spec and spec.get("auto_fill", True) is not False:
            parts.auto_fill[name] = slot.origin
    return errors


def _read_responses_section(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    expect(value, dict, what="'responses'", file=file, line=line, key="responses")
    responses, errors = read_responses(value, file=file)
    for name, variations in responses.items():
        origin = Origin(file, line_of(value, name))
        add_item(
            parts.responses,
            name,
            variations,
            origin,
            "response",
            errors,
            known_origin=parts.response_origins.get(name),
        )
        parts.response_origins.setdefault(name, origin)
    return errors


def _read_actions(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    errors: list[ProjectError] = []
    for name, props, item_line in _entries(value, "actions", file, line, errors):
        origin = Origin(file, item_line)
        parts.actions.setdefault(name, origin)
        if props is None:
            continue
        try:
            expect(
                props,
                dict,
                what=f"the options of action '{name}'",
                file=file,
                line=item_line,
                key=name,
            )
            bad = unknown_keys(props, ("send_domain",), file=file, what=f"action '{name}'")
            if bad:
                raise bad[0]
            expect(
                props.get("send_domain", False),
                bool,
                what="'send_domain'",
                file=file,
                line=line_of(props, "send_domain"),
                key="send_domain",
            )
        except ProjectError as e:
            errors.append(e)
            continue
        if props:
            options = to_plain(props)
            previous = parts.action_options.get(name)
            if previous is not None and previous != options:
                errors.append(
                    ProjectError(
                        f"action '{name}' is declared twice with different options",
                        file=file,
                        line=item_line,
                        key=name,
                        hint=f"It is also declared at {describe_origin(parts.actions[name])}",
                    )
                )
            parts.action_options[name] = options
    return errors


def _read_forms(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    if isinstance(value, list):
        raise ProjectError(
            "'forms' must be a mapping of form names to their required_slots",
            file=file,
            line=line,
            key="forms",
            hint="Rasa 3 writes 'forms: {my_form: {required_slots: [a, b]}}'",
        )
    expect(value, dict, what="'forms'", file=file, line=line, key="forms")
    errors: list[ProjectError] = []
    for name, spec in value.items():
        form_line = line_of(value, name)
        try:
            form = _read_form(str(name), spec, file, form_line)
        except ProjectError as e:
            errors.append(e)
            continue
        add_item(parts.forms, form.name, form, form.origin, "form", errors)
        required = spec.get("required_slots") if isinstance(spec, dict) else None
        if _rasa20_form(spec):
            required = spec  # its slots and their mappings right under the form
        if isinstance(required, dict):
            errors.extend(_read_rasa2_form_mappings(parts, form.name, required, file))
    return errors


def _rasa20_form(spec: Any) -> bool:
    """Whether a form is written as Rasa 2.0 wrote them: each slot and its list of mappings
    right under the form, without ``required_slots`` (Rasa's helpdesk-assistant)."""
    if not isinstance(spec, dict) or "required_slots" in spec:
        return False
    slots = [value for key, value in spec.items() if key != "ignored_intents"]
    return bool(slots) and all(isinstance(value, list) for value in slots)


def _read_rasa2_form_mappings(
    parts: DomainParts, form: str, required: dict[str, Any], file: str | None
) -> list[ProjectError]:
    """A Rasa 2 form's slot mappings, read as Rasa's ``rasa data migrate`` writes them into the
    slots: each with the condition that the form is active (and, but for ``from_entity`` and
    ``from_trigger_intent``, that it asks for this slot). Said in one warning line: Rasa 3
    reads mappings from the slots only."""
    errors: list[ProjectError] = []
    mapped = []
    for slot, raw in required.items():
        if not raw or slot == "ignored_intents":  # the latter: a Rasa 2.0 form's own key
            continue
        mapped.append(str(slot))
        at = line_of(required, slot)
        if not isinstance(raw, list):
            errors.append(
                ProjectError(
                    f"the mappings of slot '{slot}' in form '{form}' must be a list",
                    file=file,
                    line=at,
                    key=str(slot),
                )
            )
            continue
        items = []
        for item in raw:
            if isinstance(item, dict):
                condition = {"active_loop": form}
                if item.get("type") not in ("from_entity", "from_trigger_intent"):
                    condition["requested_slot"] = str(slot)
                conditions = item.get("conditions") or []
                if isinstance(conditions, list):  # else the mapping reader names the mistake
                    item = {**item, "conditions": [*conditions, condition]}
            items.append(item)
        mappings, mapping_errors = read_mappings(str(slot), items, file=file, line=at)
        errors.extend(mapping_errors)
        parts.form_mappings.append((form, str(slot), mappings))
    if mapped:
        where = f"{file}:{line_of(required, mapped[0])}: " if file else ""
        logger.warning(
            "%sform '%s' holds Rasa 2 slot mappings (for %s): read as the slots' mappings while "
            "the form is active, as `rasa data migrate` writes them; Rasa 3 reads mappings from "
            "the slots only",
            where,
            form,
            ", ".join(mapped),
        )
    return errors


def _read_form(name: str, spec: Any, file: str | None, line: int | None) -> Form:
    origin = Origin(file, line)
    if spec is None:
        return Form(name, (), origin=origin)
    expect(spec, dict, what=f"form '{name}'", file=file, line=line, key=name)
    rasa20 = _rasa20_form(spec)
    bad = unknown_keys(
        spec, ("required_slots", "ignored_intents"), file=file, what=f"form '{name}'"
    )
    if bad and not rasa20:
        raise bad[0]
    raw = spec.get("required_slots")
    slots_line = line_of(spec, "required_slots")
    if rasa20:  # Rasa 2.0: {slot: [mappings]} right under the form
        required = tuple(str(k) for k in spec if k != "ignored_intents")
    elif isinstance(raw, dict):  # Rasa 2.x: required_slots: {slot: [mappings]}
        required = tuple(str(k) for k in raw)
    else:
        required = as_name_list(
            raw, what="'required_slots'", file=file, line=slots_line, key="required_slots"
        )
    ignored = as_name_list(
        spec.get("ignored_intents"),
        what="'ignored_intents'",
        file=file,
        line=line_of(spec, "ignored_intents"),
        key="ignored_intents",
    )
    return Form(name, required, ignored, origin)


def _read_session_config(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    expect(value, dict, what="'session_config'", file=file, line=line, key="session_config")
    errors = misspelled_keys(value, _SETTING_KEYS, file=file, what="session_config")
    for key in _SETTING_KEYS:
        if key not in value:
            continue
        setting = value[key]
        key_line = line_of(value, key)
        try:
            if key == "session_expiration_time":
                expect(setting, (int, float), what=f"'{key}'", file=file, line=key_line, key=key)
                if finite_number(setting) is None:  # NaN, infinity, or no float holds it
                    raise ProjectError(
                        f"session_expiration_time must be a number of minutes, not {setting!r:.40}",
                        file=file,
                        line=key_line,
                        key=key,
                        hint="Use minutes, or 0 for sessions that never expire",
                    )
                if setting < 0:
                    raise ProjectError(
                        "session_expiration_time cannot be negative",
                        file=file,
                        line=key_line,
                        key=key,
                        value=setting,
                        hint="Use minutes, or 0 for sessions that never expire",
                    )
            else:
                expect(setting, bool, what=f"'{key}'", file=file, line=key_line, key=key)
        except ProjectError as e:
            errors.append(e)
            continue
        add_setting(parts, key, setting, Origin(file, key_line), errors)
    return errors


def _read_config(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    expect(value, dict, what="'config'", file=file, line=line, key="config")
    errors = unknown_keys(value, ("store_entities_as_slots",), file=file, what="the domain config")
    if "store_entities_as_slots" in value:
        key_line = line_of(value, "store_entities_as_slots")
        setting = expect(
            value["store_entities_as_slots"],
            bool,
            what="'store_entities_as_slots'",
            file=file,
            line=key_line,
            key="store_entities_as_slots",
        )
        add_setting(parts, "store_entities_as_slots", setting, Origin(file, key_line), errors)
    return errors


def add_setting(
    parts: DomainParts, key: str, value: Any, origin: Origin, errors: list[ProjectError]
) -> None:
    previous = parts.settings.get(key)
    if previous is not None and previous[0] != value:
        errors.append(
            ProjectError(
                f"'{key}' is set twice with different values",
                file=origin.file,
                line=origin.line,
                key=key,
                value=value,
                hint=f"It is also set to {previous[0]!r} at {describe_origin(previous[1])}",
            )
        )
        return
    parts.settings.setdefault(key, (value, origin))


def _read_action_texts(
    parts: DomainParts, value: Any, file: str | None, line: int | None
) -> list[ProjectError]:
    for text in as_name_list(value, what="'e2e_actions'", file=file, line=line, key="e2e_actions"):
        parts.action_texts.setdefault(text, Origin(file, line))
    return []


SectionReader = Callable[[DomainParts, Any, "str | None", "int | None"], list[ProjectError]]
SECTION_READERS: dict[str, SectionReader] = {
    "intents": _read_intents,
    "entities": _read_entities,
    "slots": _read_slots_section,
    "responses": _read_responses_section,
    "actions": _read_actions,
    "forms": _read_forms,
    "session_config": _read_session_config,
    "config": _read_config,
    "e2e_actions": _read_action_texts,
}
