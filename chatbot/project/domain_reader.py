"""Reading a Rasa 3.x domain (one file, several files, or a ``domain/`` folder) into a ``Domain``.

Each file is read into ``DomainParts`` (named items with where they were written); the parts of
all files are merged the way Rasa merges split domains (lists concatenated, mappings merged), except
that a name defined twice with different content is an error naming both places; the merged parts
then become one ``Domain``. ``domain_to_dict`` writes Rasa's format back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.project.domain import (
    KNOWLEDGE_BASE_ACTION,
    KNOWLEDGE_BASE_SLOTS,
    NO_ORIGIN,
    Domain,
    Intent,
    SessionConfig,
    Slot,
    SlotMapping,
)
from chatbot.project.domain_parts import (
    SECTION_READERS,
    DomainParts,
    add_item,
    add_setting,
    describe_origin,
)
from chatbot.project.domain_responses import variation_to_dict
from chatbot.project.domain_slots import slot_to_dict
from chatbot.project.format_version import check_format_version, older_format
from chatbot.project.yaml_io import (
    expect,
    line_of,
    load_yaml,
    misspelled_keys,
)

logger = logging.getLogger(__name__)

DOMAIN_KEYS = (
    "version",
    "intents",
    "entities",
    "slots",
    "responses",
    "actions",
    "forms",
    "session_config",
    "config",
    "e2e_actions",
)
_RENAMED = {"templates": "responses"}


# --- public API ---------------------------------------------------------------------------------


def read_domain(paths: Sequence[Path]) -> Domain:
    """Read and merge domain files (a folder stands for every .yml/.yaml file under it)."""
    domain, errors = collect_domain(paths)
    if errors:
        raise ProjectErrors(errors)
    return domain


def domain_from_dict(data: Any, file: str | None = None) -> Domain:
    """A domain from parsed YAML (or any dict in Rasa's domain format)."""
    parts, errors = domain_parts_from_dict(data, file)
    domain, build_errors = build_domain([parts])
    errors.extend(build_errors)
    if errors:
        raise ProjectErrors(errors)
    return domain


def domain_to_dict(domain: Domain) -> dict[str, Any]:
    """``domain`` in Rasa's domain format; ``domain_from_dict`` reads it back to an equal domain."""
    intents: list[Any] = []
    for intent in domain.intents.values():
        if intent.used_entities is None:
            intents.append(intent.name)
        else:
            intents.append({intent.name: {"use_entities": list(intent.used_entities)}})
    entities: list[Any] = []
    for entity in domain.entities.values():
        props: dict[str, Any] = {}
        if entity.roles:
            props["roles"] = list(entity.roles)
        if entity.groups:
            props["groups"] = list(entity.groups)
        if not entity.influence_conversation:
            props["influence_conversation"] = False
        entities.append({entity.name: props} if props else entity.name)
    actions: list[Any] = [
        {name: dict(domain.action_options[name])} if name in domain.action_options else name
        for name in domain.actions
    ]
    data: dict[str, Any] = {
        "version": "3.1",
        "intents": intents,
        "entities": entities,
        "slots": {name: slot_to_dict(slot) for name, slot in domain.slots.items()},
        "responses": {
            name: [variation_to_dict(v) for v in variations]
            for name, variations in domain.responses.items()
        },
        "actions": actions,
        "forms": {
            name: {
                "required_slots": list(form.required_slots),
                **({"ignored_intents": list(form.ignored_intents)} if form.ignored_intents else {}),
            }
            for name, form in domain.forms.items()
        },
        "e2e_actions": list(domain.action_texts),
        "session_config": {
            "session_expiration_time": domain.session_config.session_expiration_time,
            "carry_over_slots_to_new_session": domain.session_config.carry_over_slots,
        },
        "config": {"store_entities_as_slots": domain.store_entities_as_slots},
    }
    return data


def domain_files(path: Path) -> list[Path]:
    """``path`` itself, or the .yml/.yaml files under a folder, sorted (hidden ones skipped)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix in (".yml", ".yaml")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def collect_domain(
    paths: Sequence[Path], extra: Iterable[DomainParts] = ()
) -> tuple[Domain, list[ProjectError]]:
    """Read, merge and build; every problem is returned rather than raised.

    ``extra`` are parts read elsewhere (``responses:`` in training data files).
    """
    errors: list[ProjectError] = []
    parts_list: list[DomainParts] = []
    for path in paths:
        if not path.exists():
            errors.append(ProjectError("domain file or folder not found", file=str(path)))
            continue
        for file_path in domain_files(path):
            name = str(file_path)
            try:
                data = load_yaml(file_path, file=name)
            except ProjectError as e:
                errors.append(e)
                continue
            if not check_format_version(data, name):  # newer than Rasa 3's: skipped
                continue
            parts, part_errors = domain_parts_from_dict(data, name)
            errors.extend(part_errors)
            parts_list.append(parts)
    parts_list.extend(extra)
    domain, build_errors = build_domain(parts_list)
    return domain, errors + build_errors


# --- reading one file ---------------------------------------------------------------------------


def domain_parts_from_dict(
    data: Any, file: str | None, *, only_responses: bool = False
) -> tuple[DomainParts, list[ProjectError]]:
    """The items one domain file declares. ``only_responses``: a training data file's
    ``responses:`` (other keys are not looked at)."""
    parts = DomainParts(files=[file] if file else [])
    if data is None:
        return parts, []
    try:
        expect(data, dict, what="a domain file", file=file, line=line_of(data) or 1)
    except ProjectError as e:
        return parts, [e]
    errors: list[ProjectError] = []
    parts.rasa2 = older_format(data)
    if not only_responses:
        for key in data:
            if key in _RENAMED:
                errors.append(
                    ProjectError(
                        "unknown key in the domain",
                        file=file,
                        line=line_of(data, key),
                        key=str(key),
                        hint=f"It was renamed '{_RENAMED[key]}' in Rasa 2.0",
                    )
                )
        # Rasa's domain schema lets other keys through, unread.
        errors.extend(
            misspelled_keys(data, (*DOMAIN_KEYS, *_RENAMED), file=file, what="the domain")
        )
    for key, reader in SECTION_READERS.items():
        if only_responses and key != "responses":
            continue
        value = data.get(key)
        if value is None:
            continue
        try:
            errors.extend(reader(parts, value, file, line_of(data, key)))
        except ProjectError as e:
            errors.append(e)
    errors.sort(key=lambda e: e.line or 0)
    return parts, errors


# --- merging and building -----------------------------------------------------------------------


def merge_domain_parts(parts_list: Iterable[DomainParts]) -> tuple[DomainParts, list[ProjectError]]:
    """One domain of several files' parts. An intent, entity, slot, response or form that two
    files define differently is a warning naming both places, and the first definition holds:
    as Rasa ("duplicated ... found across multiple domain files")."""
    merged = DomainParts()
    errors: list[ProjectError] = []
    twice: list[ProjectError] = []
    for parts in parts_list:
        for name, spec in parts.intents.items():
            add_item(merged.intents, name, spec, spec.origin, "intent", twice)
        for name, entity in parts.entities.items():
            add_item(merged.entities, name, entity, entity.origin, "entity", twice)
        for name, slot in parts.slots.items():
            add_item(merged.slots, name, slot, slot.origin, "slot", twice)
        for name, variations in parts.responses.items():
            origin = parts.response_origins.get(name, NO_ORIGIN)
            add_item(
                merged.responses,
                name,
                variations,
                origin,
                "response",
                twice,
                known_origin=merged.response_origins.get(name),
            )
            merged.response_origins.setdefault(name, origin)
        for name, origin in parts.actions.items():
            merged.actions.setdefault(name, origin)
        for name, options in parts.action_options.items():
            previous = merged.action_options.get(name)
            if previous is not None and previous != options:
                where = parts.actions.get(name, NO_ORIGIN)
                errors.append(
                    ProjectError(
                        f"action '{name}' is declared twice with different options",
                        file=where.file,
                        line=where.line,
                        key=name,
                        hint=f"It is also declared at {describe_origin(merged.actions[name])}",
                    )
                )
            merged.action_options.setdefault(name, options)
        for name, form in parts.forms.items():
            add_item(merged.forms, name, form, form.origin, "form", twice)
        # A Rasa 2 form declared in two domain files (a split domain's copies) gives its slots'
        # mappings once: the first file's.
        mapped = {(form, slot) for form, slot, _ in merged.form_mappings}
        merged.form_mappings.extend(m for m in parts.form_mappings if m[:2] not in mapped)
        for name, origin in parts.auto_fill.items():
            if merged.slots.get(name) is parts.slots.get(name):  # the definition that holds
                merged.auto_fill.setdefault(name, origin)
        for key, (value, origin) in parts.settings.items():
            add_setting(merged, key, value, origin, errors)
        for text, origin in parts.action_texts.items():
            merged.action_texts.setdefault(text, origin)
        merged.files.extend(f for f in parts.files if f not in merged.files)
    for warning in twice:
        logger.warning("%s; the first definition is used", warning)
    return merged, errors


def build_domain(parts_list: Iterable[DomainParts]) -> tuple[Domain, list[ProjectError]]:
    parts, errors = merge_domain_parts(parts_list)
    entity_names = tuple(parts.entities)
    intents = {}
    for name, spec in parts.intents.items():
        used: tuple[str, ...] | None
        if spec.ignore_entities is not None:
            used = tuple(e for e in entity_names if e not in spec.ignore_entities)
        elif spec.use_entities is True:
            used = None
        elif spec.use_entities is False:
            used = ()
        else:
            used = spec.use_entities
        intents[name] = Intent(name, used, spec.origin)
    settings = {key: value for key, (value, _) in parts.settings.items()}
    slots = dict(parts.slots)
    filled = [name for name in parts.auto_fill if name in slots and name in parts.entities]
    for name in filled:
        auto = SlotMapping("from_entity", entity=name, origin=parts.auto_fill[name])
        slots[name] = dataclasses.replace(slots[name], mappings=(auto, *slots[name].mappings))
    if filled:
        logger.warning(
            "%sRasa 2 slots without 'mappings' (%s) fill from the entity of their name, as "
            "Rasa 2's auto_fill did; Rasa 3 needs their mappings written out (`chatbot data "
            "migrate` writes them)",
            parts.auto_fill[filled[0]].prefix,
            ", ".join(filled),
        )
    for _form, name, mappings in parts.form_mappings:
        slot = slots.get(name)
        if slot is not None:  # an unknown slot of a form is the validator's error
            slots[name] = dataclasses.replace(slot, mappings=(*slot.mappings, *mappings))
    if KNOWLEDGE_BASE_ACTION in parts.actions:
        for name in KNOWLEDGE_BASE_SLOTS:
            slots.setdefault(name, Slot(name, "text", influence_conversation=False))
    domain = Domain(
        intents=intents,
        entities=dict(parts.entities),
        slots=slots,
        responses=dict(parts.responses),
        actions=tuple(parts.actions),
        forms=dict(parts.forms),
        session_config=SessionConfig(
            session_expiration_time=float(settings.get("session_expiration_time", 60.0)),
            carry_over_slots=settings.get("carry_over_slots_to_new_session", True),
        ),
        store_entities_as_slots=settings.get("store_entities_as_slots", True),
        action_options=dict(parts.action_options),
        files=tuple(parts.files),
        action_texts=tuple(parts.action_texts),
    )
    return domain, errors
