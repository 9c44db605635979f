"""The ``slots:`` section of a domain: reading slots and their mappings, and writing them back."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import (
    MAPPING_TYPES,
    SLOT_TYPES,
    MappingCondition,
    Origin,
    Slot,
    SlotMapping,
)
from chatbot.project.yaml_io import (
    as_name_list,
    close_matches_hint,
    describe_type,
    expect,
    line_of,
    scalar_text,
    to_plain,
    unknown_keys,
)

logger = logging.getLogger(__name__)

_SLOT_KEYS = (
    "type",
    "values",
    "min_value",
    "max_value",
    "initial_value",
    "influence_conversation",
    "mappings",
    "value_reset_delay",  # accepted by Rasa's slots and unused, as in Rasa
)
# ``type: rasa.shared.core.slots.TextSlot`` is how Rasa writes slot types in trained models.
_RASA_SLOT_CLASSES = {
    "rasa.shared.core.slots.TextSlot": "text",
    "rasa.shared.core.slots.BooleanSlot": "bool",
    "rasa.shared.core.slots.CategoricalSlot": "categorical",
    "rasa.shared.core.slots.FloatSlot": "float",
    "rasa.shared.core.slots.ListSlot": "list",
    "rasa.shared.core.slots.AnySlot": "any",
}
# The keys a project's slot class is not given among its other keys (read into the slot itself).
_CLASS_READS = ("type", "initial_value", "influence_conversation", "mappings")
_COMMON_MAPPING_KEYS = ("type", "conditions")
_INTENT_FILTER_KEYS = ("intent", "not_intent")
MAPPING_KEYS: dict[str, tuple[str, ...]] = {
    "from_entity": ("entity", "role", "group", *_INTENT_FILTER_KEYS),
    "from_text": _INTENT_FILTER_KEYS,
    "from_intent": ("value", *_INTENT_FILTER_KEYS),
    "from_trigger_intent": ("value", *_INTENT_FILTER_KEYS),
    "custom": ("action",),
}
_ALL_MAPPING_KEYS = frozenset(key for keys in MAPPING_KEYS.values() for key in keys)
_CONDITION_KEYS = ("active_loop", "requested_slot")


# Rasa 3.0 removed the key: a slot fills from its mappings only.
_AUTO_FILL_HINT = (
    "Rasa 2's 'auto_fill' is gone since Rasa 3.0: a slot fills from its mappings only "
    "('auto_fill: true' is 'mappings: [{{type: from_entity, entity: {name}}}]' where an "
    "entity has the slot's name, 'mappings: [{{type: custom}}]' otherwise; `chatbot data "
    "migrate` rewrites the domain)"
)
# Rasa 3.0 removed the type; its migration guide gives this in its place.
_UNFEATURIZED_HINT = (
    "Rasa 2's 'unfeaturized' slots are 'type: any' (or another type with "
    "'influence_conversation: false') since Rasa 3.0"
)


def read_slots(
    data: Any, *, file: str | None, rasa2: bool = False
) -> tuple[dict[str, Slot], list[ProjectError]]:
    """The ``slots:`` mapping of one domain file; every bad slot is an error, the rest are kept.
    ``rasa2``: a Rasa 2 file, whose slots may say ``auto_fill`` (read by the domain's builder)."""
    slots: dict[str, Slot] = {}
    errors: list[ProjectError] = []
    for name, spec in data.items():
        line = line_of(data, name)
        if not isinstance(name, str):
            errors.append(
                ProjectError("a slot name must be text", file=file, line=line, value=name)
            )
            continue
        slot, slot_errors = _read_slot(name, spec, file=file, line=line, rasa2=rasa2)
        errors.extend(slot_errors)
        if slot is not None:
            slots[name] = slot
    return slots, errors


def _read_slot(
    name: str, spec: Any, *, file: str | None, line: int | None, rasa2: bool = False
) -> tuple[Slot | None, list[ProjectError]]:
    if spec is None:
        spec = {}
    fields: dict[str, Any] = {}
    try:
        expect(spec, dict, what=f"slot '{name}'", file=file, line=line, key=name)
    except ProjectError as e:
        return None, [e]
    auto_fill = _AUTO_FILL_HINT.format(name=name)
    raw_type = spec.get("type")
    custom = _is_custom_slot_class(raw_type)
    # A project's slot class gets the slot's other keys as keyword arguments, as in Rasa: any key.
    errors = [
        dataclasses.replace(e, hint=auto_fill) if e.key == "auto_fill" else e
        for e in unknown_keys(spec, _SLOT_KEYS, file=file, what=f"slot '{name}'")
        if not (rasa2 and e.key == "auto_fill" and isinstance(spec["auto_fill"], bool))
        and not custom
    ]

    def at(key: str) -> int | None:
        return line_of(spec, key) if key in spec else line

    slot_type = _RASA_SLOT_CLASSES.get(raw_type, raw_type) if isinstance(raw_type, str) else None
    if custom:
        # Imported with the project (``chatbot.project.custom_slots``), which gives the slot the
        # type the class derives from; until then (a domain read alone) it is a text slot.
        slot_type = "text"
        fields["custom"] = raw_type
        read = (*_CLASS_READS, "auto_fill") if rasa2 else _CLASS_READS  # Rasa 2's: read apart
        fields["settings"] = {str(k): to_plain(v) for k, v in spec.items() if k not in read}
    if slot_type not in SLOT_TYPES:
        message = (
            f"slot '{name}' has no type"
            if raw_type is None
            else f"slot '{name}' has an unknown type"
        )
        errors.append(
            ProjectError(
                message,
                file=file,
                line=at("type"),
                key="type",
                value=raw_type,
                hint=(
                    _UNFEATURIZED_HINT
                    if raw_type in ("unfeaturized", "rasa.shared.core.slots.UnfeaturizedSlot")
                    else _choices_hint(raw_type, SLOT_TYPES, "valid slot types")
                ),
            )
        )
        return None, errors

    for key, allowed_for in (
        ("values", "categorical"),
        ("min_value", "float"),
        ("max_value", "float"),
    ):
        if key in spec and slot_type != allowed_for and not custom:
            errors.append(
                ProjectError(
                    f"'{key}' is only valid for {allowed_for} slots, slot '{name}' is {slot_type}",
                    file=file,
                    line=at(key),
                    key=key,
                )
            )

    try:
        if slot_type == "categorical":
            fields["values"] = _categorical_values(name, spec, file=file, line=at("values"))
        elif slot_type == "float":
            fields.update(_float_range(name, spec, file=file, at=at))
    except ProjectError as e:
        errors.append(e)

    initial = spec.get("initial_value")
    try:
        _check_initial_value(name, slot_type, initial, file=file, line=at("initial_value"))
        fields["initial_value"] = to_plain(initial)
    except ProjectError as e:
        errors.append(e)

    default_influence = slot_type != "any"
    influence = spec.get("influence_conversation", default_influence)
    if influence is None:
        influence = default_influence
    if not isinstance(influence, bool):
        errors.append(
            ProjectError(
                f"'influence_conversation' of slot '{name}' must be true or false",
                file=file,
                line=at("influence_conversation"),
                key="influence_conversation",
                value=influence,
            )
        )
    elif slot_type == "any" and influence:
        errors.append(
            ProjectError(
                f"slot '{name}' of type any cannot influence the conversation",
                file=file,
                line=at("influence_conversation"),
                key="influence_conversation",
                value=True,
                hint="Set influence_conversation: false or use another slot type",
            )
        )
    else:
        fields["influence_conversation"] = influence

    mappings, mapping_errors = read_mappings(
        name, spec.get("mappings"), file=file, line=at("mappings")
    )
    errors.extend(mapping_errors)
    if errors:
        return None, errors
    return Slot(
        name=name, type=slot_type, mappings=mappings, origin=Origin(file, line), **fields
    ), errors


def _is_custom_slot_class(raw_type: Any) -> bool:
    """Whether a slot's ``type`` names a Slot class of the project's own (``addons.slots.X``)."""
    return (
        isinstance(raw_type, str)
        and "." in raw_type
        and raw_type not in _RASA_SLOT_CLASSES
        and not raw_type.startswith("rasa.")
        and all(part.isidentifier() for part in raw_type.split("."))
    )


def _categorical_values(
    name: str, spec: dict[str, Any], *, file: str | None, line: int | None
) -> tuple[str, ...]:
    values = spec.get("values")
    if not values:
        raise ProjectError(
            f"categorical slot '{name}' needs a non-empty list of values",
            file=file,
            line=line,
            key="values",
            hint="Add 'values: [a, b, ...]' or use a text slot",
        )
    expect(values, list, what=f"'values' of slot '{name}'", file=file, line=line, key="values")
    result = []
    for index, value in enumerate(values):
        if isinstance(value, (dict, list)):
            raise ProjectError(
                f"each value of categorical slot '{name}' must be a single value",
                file=file,
                line=line_of(values, index) or line,
                key="values",
            )
        # Rasa compares categorical values case-insensitively and keeps them lower-cased.
        result.append(scalar_text(value).lower())
    return tuple(dict.fromkeys(result))


def _float_range(name: str, spec: dict[str, Any], *, file: str | None, at: Any) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for key, default in (("min_value", 0.0), ("max_value", 1.0)):
        value = spec.get(key, default)
        expect(
            value, (int, float), what=f"'{key}' of slot '{name}'", file=file, line=at(key), key=key
        )
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if math.isnan(number):
            raise ProjectError(
                f"'{key}' of slot '{name}' is not a number", file=file, line=at(key), key=key
            )
        if math.isinf(number):  # the range's width would be infinite: every feature NaN
            raise ProjectError(
                f"'{key}' of slot '{name}' must be a finite number, not {value!r:.40}",
                file=file,
                line=at(key),
                key=key,
            )
        bounds[key] = number
    if bounds["min_value"] >= bounds["max_value"]:
        raise ProjectError(
            f"float slot '{name}' has an empty range: min_value {bounds['min_value']:g} is not "
            f"below max_value {bounds['max_value']:g}",
            file=file,
            line=at("max_value" if "max_value" in spec else "min_value"),
            key="max_value" if "max_value" in spec else "min_value",
            hint="min_value must be smaller than max_value",
        )
    return bounds


def _check_initial_value(
    name: str, slot_type: str, value: Any, *, file: str | None, line: int | None
) -> None:
    if value is None:
        return
    types: dict[str, type | tuple[type, ...]] = {"float": (int, float), "bool": bool, "list": list}
    wanted = types.get(slot_type)
    if wanted is not None:
        expect(
            value,
            wanted,
            what=f"'initial_value' of {slot_type} slot '{name}'",
            file=file,
            line=line,
            key="initial_value",
        )


def read_mappings(
    slot: str, data: Any, *, file: str | None, line: int | None
) -> tuple[tuple[SlotMapping, ...], list[ProjectError]]:
    if data is None:
        return (), []
    try:
        expect(
            data, list, what=f"'mappings' of slot '{slot}'", file=file, line=line, key="mappings"
        )
    except ProjectError as e:
        return (), [e]
    mappings: list[SlotMapping] = []
    errors: list[ProjectError] = []
    for index, item in enumerate(data):
        try:
            mappings.append(_read_mapping(slot, item, file=file, line=line_of(data, index) or line))
        except ProjectError as e:
            errors.append(e)
    return tuple(mappings), errors


def _read_mapping(slot: str, item: Any, *, file: str | None, line: int | None) -> SlotMapping:
    expect(item, dict, what=f"each mapping of slot '{slot}'", file=file, line=line)
    kind = item.get("type")
    if kind not in MAPPING_TYPES:
        raise ProjectError(
            f"slot '{slot}' has a mapping of unknown type"
            if kind is not None
            else f"a mapping of slot '{slot}' has no type",
            file=file,
            line=line_of(item, "type") if "type" in item else line,
            key="type",
            value=kind if isinstance(kind, (str, int, float, bool)) else describe_type(kind),
            hint=_choices_hint(kind, MAPPING_TYPES, "valid mapping types"),
        )
    allowed = _COMMON_MAPPING_KEYS + MAPPING_KEYS[kind]
    for unknown in unknown_keys(
        item, allowed, file=file, what=f"a {kind} mapping of slot '{slot}'"
    ):
        # Rasa lets other keys through: a key of another mapping type (carbon-bot's
        # `entity:` on a from_text mapping) or anything else is not read; a misspelling is.
        if unknown.key in _ALL_MAPPING_KEYS or not (unknown.hint or "").startswith("Did you"):
            said = dataclasses.replace(unknown, hint=None, line=unknown.line or line)
            logger.warning("%s; not read (as in Rasa)", said)
        else:
            raise unknown

    def at(key: str) -> int | None:
        return line_of(item, key) if key in item else line

    def text(key: str) -> str | None:
        value = item.get(key)
        if value is None:
            return None
        return str(
            expect(
                value, str, what=f"'{key}' of a {kind} mapping", file=file, line=at(key), key=key
            )
        )

    required_keys = {
        "from_entity": ("entity",),
        "from_intent": ("value",),
        "from_trigger_intent": ("value",),
    }
    for required in required_keys.get(kind, ()):
        if item.get(required) is None:
            raise ProjectError(
                f"a {kind} mapping of slot '{slot}' needs '{required}'",
                file=file,
                line=line,
                key=required,
            )
    return SlotMapping(
        type=kind,
        entity=text("entity"),
        role=text("role"),
        group=text("group"),
        intent=as_name_list(
            item.get("intent"), what="'intent'", file=file, line=at("intent"), key="intent"
        ),
        not_intent=as_name_list(
            item.get("not_intent"),
            what="'not_intent'",
            file=file,
            line=at("not_intent"),
            key="not_intent",
        ),
        value=to_plain(item.get("value")),
        action=text("action"),
        conditions=_read_conditions(slot, item.get("conditions"), file=file, line=at("conditions")),
        origin=Origin(file, line),
    )


def _read_conditions(
    slot: str, data: Any, *, file: str | None, line: int | None
) -> tuple[MappingCondition, ...]:
    if data is None:
        return ()
    expect(
        data,
        list,
        what=f"'conditions' of a mapping of slot '{slot}'",
        file=file,
        line=line,
        key="conditions",
    )
    conditions = []
    for index, item in enumerate(data):
        item_line = line_of(data, index) or line
        expect(item, dict, what="each mapping condition", file=file, line=item_line)
        errors = unknown_keys(item, _CONDITION_KEYS, file=file, what="a mapping condition")
        if errors:
            raise errors[0]
        if "active_loop" not in item:
            raise ProjectError(
                "a mapping condition needs 'active_loop' (a form name, or null for no form)",
                file=file,
                line=item_line,
                key="active_loop",
            )
        values = []
        for key in _CONDITION_KEYS:
            value = item.get(key)
            if value is not None:
                expect(
                    value,
                    str,
                    what=f"'{key}' of a mapping condition",
                    file=file,
                    line=line_of(item, key),
                    key=key,
                )
            values.append(value)
        conditions.append(MappingCondition(active_loop=values[0], requested_slot=values[1]))
    return tuple(conditions)


# --- writing ------------------------------------------------------------------------------------


def slot_to_dict(slot: Slot) -> dict[str, Any]:
    """One slot in Rasa's domain format."""
    data: dict[str, Any] = {"type": slot.custom or slot.type}
    if slot.custom:
        data.update(slot.settings)
    elif slot.type == "categorical":
        data["values"] = list(slot.values)
    elif slot.type == "float":
        data["min_value"] = slot.min_value
        data["max_value"] = slot.max_value
    data["initial_value"] = slot.initial_value
    data["influence_conversation"] = slot.influence_conversation
    data["mappings"] = [mapping_to_dict(m) for m in slot.mappings]
    return data


def mapping_to_dict(mapping: SlotMapping) -> dict[str, Any]:
    data: dict[str, Any] = {"type": mapping.type}
    for key in ("entity", "role", "group", "action"):
        value = getattr(mapping, key)
        if value is not None:
            data[key] = value
    if mapping.type in ("from_intent", "from_trigger_intent"):
        data["value"] = mapping.value
    if mapping.intent:
        data["intent"] = list(mapping.intent)
    if mapping.not_intent:
        data["not_intent"] = list(mapping.not_intent)
    if mapping.conditions:
        data["conditions"] = [
            {"active_loop": c.active_loop}
            | ({"requested_slot": c.requested_slot} if c.requested_slot is not None else {})
            for c in mapping.conditions
        ]
    return data


def _choices_hint(value: Any, choices: tuple[str, ...], what: str) -> str:
    """``Did you mean 'text'? Valid slot types: text, bool, ...``"""
    listing = f"{what[:1].upper()}{what[1:]}: {', '.join(choices)}"
    close = close_matches_hint(value, choices, what) if isinstance(value, str) else ""
    return f"{close} {listing}" if close.startswith("Did you mean") else listing
