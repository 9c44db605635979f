"""NLU data in Rasa's JSON format (``{"rasa_nlu_data": {...}}``), read and written, for
``chatbot data convert nlu`` (Rasa's ``rasa data convert nlu``)::

    {"rasa_nlu_data": {
        "common_examples": [{"text": "fly to Berlin", "intent": "book",
                             "entities": [{"start": 7, "end": 13, "value": "Berlin",
                                           "entity": "city", "role": "to"}]}],
        "entity_synonyms": [{"value": "New York", "synonyms": ["NYC", "big apple"]}],
        "regex_features": [{"name": "zipcode", "pattern": "[0-9]{5}"}],
        "lookup_tables": [{"name": "city", "elements": ["Berlin", "Paris"]}]}}

A mistake names the file, the place (``common_examples[3].entities[0]``) and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import Origin
from chatbot.project.nlu_services import list_at, read_json, strings_at, text_at
from chatbot.project.training_data import (
    EntityAnnotation,
    LookupTable,
    NLUData,
    NLUExample,
    RegexFeature,
)

SECTIONS = ("common_examples", "entity_synonyms", "regex_features", "lookup_tables")


def read_rasa_json(path: Path) -> NLUData:
    content = read_json(path)
    file = str(path)
    body = content.get("rasa_nlu_data") if isinstance(content, dict) else None
    if not isinstance(body, dict):
        raise ProjectError(
            "not Rasa's NLU JSON: the top level must be an object with 'rasa_nlu_data'",
            file=file,
        )
    data = NLUData()
    for index, item in enumerate(list_at(body, "common_examples", file)):
        data.examples.append(_example(item, f"common_examples[{index}]", file, data))
    for index, item in enumerate(list_at(body, "entity_synonyms", file)):
        where = f"entity_synonyms[{index}]"
        value = text_at(item, "value", where, file)
        for variant in strings_at(item, "synonyms", where, file):
            data.synonyms[variant.lower()] = value
    for index, item in enumerate(list_at(body, "regex_features", file)):
        where = f"regex_features[{index}]"
        name, pattern = text_at(item, "name", where, file), text_at(item, "pattern", where, file)
        data.regexes.append(RegexFeature(name, pattern, Origin(file, None)))
    for index, item in enumerate(list_at(body, "lookup_tables", file)):
        where = f"lookup_tables[{index}]"
        name = text_at(item, "name", where, file)
        elements = tuple(strings_at(item, "elements", where, file))
        data.lookups.append(LookupTable(name, elements, Origin(file, None)))
    return data


def rasa_json(data: NLUData) -> dict[str, Any]:
    variants: dict[str, list[str]] = {}
    for variant, canonical in data.synonyms.items():
        if variant != canonical.lower():
            variants.setdefault(canonical, []).append(variant)
    return {
        "rasa_nlu_data": {
            "common_examples": [
                {
                    "text": e.text,
                    "intent": e.intent,
                    "entities": [entity_json(a) for a in e.entities],
                }
                for e in data.examples
            ],
            "entity_synonyms": [{"value": v, "synonyms": s} for v, s in variants.items()],
            "regex_features": [{"name": r.name, "pattern": r.pattern} for r in data.regexes],
            "lookup_tables": [{"name": t.name, "elements": list(t.elements)} for t in data.lookups],
        }
    }


def entity_json(entity: EntityAnnotation) -> dict[str, Any]:
    """An annotation as Rasa's entity JSON (offsets, value, entity; role and group if set)."""
    found: dict[str, Any] = {
        "start": entity.start,
        "end": entity.end,
        "value": entity.value,
        "entity": entity.entity,
    }
    if entity.role is not None:
        found["role"] = entity.role
    if entity.group is not None:
        found["group"] = entity.group
    return found


def _example(item: Any, where: str, file: str, data: NLUData) -> NLUExample:
    text = text_at(item, "text", where, file, empty=True)
    intent = text_at(item, "intent", where, file)
    entities = []
    for index, entity in enumerate(item.get("entities") or []):
        at = f"{where}.entities[{index}]"
        if not isinstance(entity, dict):
            raise ProjectError(f"{at}: an entity is an object", file=file)
        start, end = entity.get("start"), entity.get("end")
        if not (
            isinstance(start, int)
            and isinstance(end, int)
            and not isinstance(start, bool)
            and not isinstance(end, bool)
            and 0 <= start < end <= len(text)
        ):
            raise ProjectError(
                f"{at}: 'start' {start!r} and 'end' {end!r} are not a span of the text "
                f"({len(text)} characters)",
                file=file,
            )
        name = text_at(entity, "entity", at, file)
        covered = text[start:end]
        value = entity.get("value", covered)
        value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if value != covered:
            data.synonyms.setdefault(covered.lower(), value)  # as Rasa: the value is a synonym
        role, group = entity.get("role"), entity.get("group")
        entities.append(
            EntityAnnotation(
                start,
                end,
                value,
                name,
                str(role) if role is not None else None,
                str(group) if group is not None else None,
            )
        )
    return NLUExample(text, intent, tuple(entities), Origin(file, None))
