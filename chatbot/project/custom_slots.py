"""A domain's slots of a project's own class (``type: addons.slots.NumberOfPeopleSlot``), imported.

Rasa imports such a class when it reads the domain and makes the slot an instance of it, which
the policies then read through its ``as_feature()``. The domain reader records the class's path;
``resolve_slot_kinds`` imports it (from the project's folder, then the working directory, as a
project's components are), makes the slot's instance with the slot's settings, and gives the slot
its ``kind`` (``chatbot.rasa_compat.slots.SlotKind``) and the built-in type the class derives from.
A project is resolved when it is loaded; a model when it is read (the project's folder recorded at
training is searched after the working directory, as for its components).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ConfigError, ProjectError
from chatbot.project.domain import Domain, Slot

__all__ = ["CODE_FOLDER", "has_custom_slots", "resolve_slot_kinds", "slot_sources"]

# The model's meta key for the project's folder, where a served model's slot classes are looked
# for after the working directory.
CODE_FOLDER = "code_folder"


def has_custom_slots(domain: Domain) -> bool:
    return any(slot.custom for slot in domain.slots.values())


def resolve_slot_kinds(
    domain: Domain, folders: Sequence[Path]
) -> tuple[Domain, list[ProjectError]]:
    """``domain`` with each project slot class imported and its slot's instance made; an error
    (naming the slot's file and line) for each one that cannot be, whose slot stays a text slot."""
    waiting = [slot for slot in domain.slots.values() if slot.custom and slot.kind is None]
    if not waiting:
        return domain, []
    from chatbot.project.domain_slots import mapping_to_dict
    from chatbot.rasa_compat.slots import SlotKind

    slots = dict(domain.slots)
    errors: list[ProjectError] = []
    for slot in waiting:
        assert slot.custom is not None
        settings = {
            "mappings": [mapping_to_dict(m) for m in slot.mappings],
            "initial_value": slot.initial_value,
            "influence_conversation": slot.influence_conversation,
            **slot.settings,
        }
        try:
            kind = SlotKind(slot.custom, slot.name, settings, folders)
        except ConfigError as exc:
            errors.append(
                ProjectError(
                    str(exc),
                    file=slot.origin.file,
                    line=slot.origin.line,
                    key="type",
                    value=slot.custom,
                )
            )
            continue
        slots[slot.name] = _with_kind(slot, kind)
    return dataclasses.replace(domain, slots=slots), errors


def _with_kind(slot: Slot, kind: Any) -> Slot:
    """The slot with its class at work, of the type the class derives from; a categorical or
    float class's values or range as its instance holds them (the validator reads those)."""
    made = kind.instance()
    changes: dict[str, Any] = {"kind": kind, "type": kind.base_type}
    if kind.base_type == "categorical":
        values = getattr(made, "values", None) or ()
        changes["values"] = tuple(str(v) for v in values if v != "__other__")
    elif kind.base_type == "float":
        try:
            changes["min_value"] = float(made.min_value)
            changes["max_value"] = float(made.max_value)
        except (AttributeError, TypeError, ValueError):
            pass
    return dataclasses.replace(slot, **changes)


def slot_sources(domain: Domain) -> list[str]:
    """A digest of each project slot class's module, in slot order, for training's
    fingerprints: editing the class trains the policies again."""
    return [
        slot.kind.source_digest() if slot.kind is not None else f"unresolved:{slot.custom}"
        for slot in domain.slots.values()
        if slot.custom
    ]
