"""``chatbot data migrate``: a Rasa 2 domain rewritten in Rasa 3's format, as ``rasa data migrate``.

- A form's ``required_slots`` with mappings (``{slot: [mappings]}``) becomes a list of slot names,
  and each mapping moves to its slot, with the condition Rasa 2 applied implicitly:
  ``active_loop: <form>``, and ``requested_slot: <slot>`` for every mapping but ``from_entity``
  and ``from_trigger_intent`` (those filled the slot whenever the form ran).
- ``auto_fill`` (true by default in Rasa 2) becomes a ``from_entity`` mapping of the entity of the
  slot's name, where the domain has that entity; the key goes.
- A slot left without mappings gets ``mappings: [{type: custom}]`` (an action fills it), said in
  a note to check, as Rasa does.
- ``type: unfeaturized`` becomes ``type: any`` with ``influence_conversation: false`` (Rasa 3's
  migration guide).
- ``version`` becomes "3.1".

The original files are not changed: the result goes to a new file (``new_domain.yml`` beside a
domain file) or folder (``new_domain/`` beside a domain folder, each file under its own name), which
must not exist yet. A domain already in Rasa 3's format (version 3.x and no Rasa 2 key) is refused.
Comments are not carried over (Rasa's migration loses them too).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import ChatbotError
from chatbot.project.domain_reader import domain_files
from chatbot.project.yaml_io import load_yaml, to_plain

VERSION = "3.1"
_ALWAYS_FILLED = ("from_entity", "from_trigger_intent")  # no requested_slot condition


class MigrationError(ChatbotError):
    """A domain that cannot be migrated (said why, with the file)."""


@dataclass
class Migration:
    files: dict[Path, dict[str, Any]]  # the new content, by output path
    notes: list[str] = field(default_factory=list)


def migrate_domain(domain: Path, out: Path | None = None) -> Migration:
    """The migrated domain (written to ``out`` or its default by ``write``)."""
    if not domain.exists():
        raise MigrationError(f"no domain at {domain}")
    originals = {path: _read(path) for path in domain_files(domain)}
    if not originals:
        raise MigrationError(f"{domain}: no domain files (.yml) in this folder")
    holding_slots = [p for p, data in originals.items() if "slots" in data]
    holding_forms = [p for p, data in originals.items() if "forms" in data]
    for key, holders in (("slots", holding_slots), ("forms", holding_forms)):
        if len(holders) > 1:
            raise MigrationError(
                f"'{key}' is in {len(holders)} files ({', '.join(map(str, holders))}); "
                "put it in one file first, as Rasa's migration asks"
            )
    if not any(_is_rasa2(data) for data in originals.values()):
        raise MigrationError(
            f"{domain} is in Rasa 3's format already (version 3.x, no Rasa 2 keys): "
            "nothing to migrate"
        )
    entities = [_entity_name(e) for data in originals.values() for e in data.get("entities", [])]
    slots: dict[str, Any] = {}
    forms: dict[str, Any] = {}
    for data in originals.values():
        slots.update(copy.deepcopy(data.get("slots") or {}))
        forms.update(copy.deepcopy(data.get("forms") or {}))
    migration = Migration({})
    new_forms = _forms(forms, slots, migration.notes)
    new_slots = {
        name: _slot(name, props, entities, migration.notes) for name, props in slots.items()
    }
    target = out if out is not None else _default_out(domain)
    for path, data in originals.items():
        new: dict[str, Any] = {}
        for key, value in data.items():
            if key == "slots":
                new[key] = new_slots
            elif key == "forms":
                new[key] = new_forms
            elif key == "version":
                new[key] = VERSION
            else:
                new[key] = value
        if "version" not in new:
            new = {"version": VERSION, **new}
        if "slots" not in new and new_slots and holding_forms[:1] == [path] and not holding_slots:
            new["slots"] = new_slots  # slots that only the form named
        where = target if domain.is_file() else target / path.relative_to(domain)
        migration.files[where] = new
    return migration


def write(migration: Migration) -> None:
    for path in migration.files:
        if path.exists():
            raise MigrationError(f"{path} exists already; remove it or give another --out")
    for path, content in migration.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=100)
        path.write_text(text.replace(f"version: '{VERSION}'", f'version: "{VERSION}"', 1))


def _read(path: Path) -> dict[str, Any]:
    data = to_plain(load_yaml(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MigrationError(f"{path}: not a domain (its YAML is not a mapping of keys)")
    return data


def _default_out(domain: Path) -> Path:
    return domain.parent / ("new_domain.yml" if domain.is_file() else "new_domain")


def _is_rasa2(data: dict[str, Any]) -> bool:
    if not str(data.get("version", "3")).startswith("3"):
        return True
    forms = data.get("forms") or {}
    slots = data.get("slots") or {}
    return any(
        isinstance(f, dict) and isinstance(f.get("required_slots"), dict) for f in forms.values()
    ) or any(
        isinstance(s, dict) and ("auto_fill" in s or s.get("type") == "unfeaturized")
        for s in slots.values()
    )


def _entity_name(entity: Any) -> str:
    if isinstance(entity, dict) and len(entity) == 1:
        return str(next(iter(entity)))  # an entity with roles or groups
    return str(entity)


def _forms(forms: dict[str, Any], slots: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Forms with lists of slot names; their mappings moved onto ``slots``."""
    new_forms: dict[str, Any] = {}
    for form_name, form in forms.items():
        if not isinstance(form, dict):
            new_forms[form_name] = form
            continue
        required = form.get("required_slots", form)
        if not isinstance(required, dict):  # Rasa 3 already: a list of names
            new_forms[form_name] = form
            continue
        names = []
        for slot_name, mappings in required.items():
            if slot_name in ("ignored_intents", "required_slots"):
                continue
            names.append(slot_name)
            if slot_name not in slots:
                notes.append(
                    f"slot '{slot_name}': form '{form_name}' asks for it and 'slots' lacks it; "
                    "added as 'type: any'"
                )
            props = slots.setdefault(slot_name, {"type": "any"})
            existing = props.setdefault("mappings", [])
            for mapping in mappings or []:
                condition = {"active_loop": form_name}
                if not isinstance(mapping, dict) or mapping.get("type") not in _ALWAYS_FILLED:
                    condition["requested_slot"] = slot_name
                placed = next((m for m in existing if _without_conditions(m) == mapping), None)
                if placed is not None:
                    placed.setdefault("conditions", []).append(condition)
                else:
                    existing.append({**mapping, "conditions": [condition]})
        new_form: dict[str, Any] = {"required_slots": names}
        if isinstance(form.get("ignored_intents"), list | str):
            new_form["ignored_intents"] = form["ignored_intents"]
        new_forms[form_name] = new_form
    return new_forms


def _without_conditions(mapping: Any) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    return {k: v for k, v in mapping.items() if k != "conditions"}


def _slot(name: str, props: Any, entities: list[str], notes: list[str]) -> Any:
    if not isinstance(props, dict):
        return props
    props = dict(props)
    if props.get("type") == "unfeaturized":
        props["type"] = "any"
        props["influence_conversation"] = False
        notes.append(f"slot '{name}': type unfeaturized is 'any' (influence_conversation: false)")
    auto_fill = props.pop("auto_fill", True)
    mappings = list(props.get("mappings") or [])
    if auto_fill is not False and name in entities:
        own = {"type": "from_entity", "entity": name}  # whenever the entity comes, form or not
        if own not in mappings:
            mappings.append(own)
    if not mappings:
        mappings = [{"type": "custom"}]
        notes.append(
            f"slot '{name}': no mapping fills it, so it has 'type: custom' (an action sets it); "
            "check that this is right"
        )
    props["mappings"] = mappings
    return props
