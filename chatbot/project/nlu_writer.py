"""Writing NLU data back as Rasa 3 YAML (``chatbot data split nlu``): the reverse of
``chatbot.project.nlu_reader``; what it writes reads back to the same examples."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from chatbot.project.training_data import EntityAnnotation, NLUData, NLUExample


def annotated_text(example: NLUExample) -> str:
    """The example's text with Rasa's entity markup: ``[Berlin](city)``, or
    ``[NYC]{"entity": "city", "value": "New York", "role": "to"}`` where more must be said."""
    out, at = [], 0
    for entity in sorted(example.entities, key=lambda e: e.start):
        out.append(example.text[at : entity.start])
        covered = example.text[entity.start : entity.end]
        out.append(f"[{covered}]{_markup(entity, covered)}")
        at = entity.end
    out.append(example.text[at:])
    return "".join(out)


def _markup(entity: EntityAnnotation, covered: str) -> str:
    if entity.value == covered and entity.role is None and entity.group is None:
        return f"({entity.entity})"
    spec: dict[str, Any] = {"entity": entity.entity}
    if entity.role is not None:
        spec["role"] = entity.role
    if entity.group is not None:
        spec["group"] = entity.group
    if entity.value != covered:
        spec["value"] = entity.value
    return json.dumps(spec, ensure_ascii=False)


class _Literal(str):
    """A string YAML writes as a ``|`` block."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _examples(lines: Iterable[str]) -> _Literal:
    return _Literal("".join(f"- {line}\n" for line in lines))


def nlu_yaml(data: NLUData, *, examples: Iterable[NLUExample] | None = None) -> str:
    """``data`` (its ``examples``, or those given) as an nlu.yml: intents in order of first
    use, then synonyms, regexes and lookup tables."""
    by_intent: dict[str, list[str]] = {}
    for example in data.examples if examples is None else examples:
        by_intent.setdefault(example.intent, []).append(annotated_text(example))
    items: list[dict[str, Any]] = [
        {"intent": intent, "examples": _examples(texts)} for intent, texts in by_intent.items()
    ]
    variants: dict[str, list[str]] = {}
    for variant, canonical in data.synonyms.items():
        if variant != canonical.lower():
            variants.setdefault(canonical, []).append(variant)
    items += [{"synonym": c, "examples": _examples(v)} for c, v in variants.items()]
    items += [{"regex": r.name, "examples": _examples([r.pattern])} for r in data.regexes]
    items += [{"lookup": t.name, "examples": _examples(t.elements)} for t in data.lookups]
    body = yaml.dump(
        {"nlu": items}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6
    )
    return 'version: "3.1"\n' + body
