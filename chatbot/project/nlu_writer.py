"""Writing NLU data back as Rasa 3 YAML (``chatbot data split nlu``): the reverse of
``chatbot.project.nlu_reader``; what it writes reads back to the same examples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from chatbot.project.domain import ResponseVariation
from chatbot.project.domain_responses import variation_to_dict
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


def annotated_message(text: str, entities: Sequence[Any]) -> str:
    """A message's text with its entities (Rasa's parse data: ``start``, ``end``, ``entity``,
    ``value``, ``role``, ``group``) marked up, as Rasa writes a test story's user text and its
    comment on a misread message."""
    return annotated_text(NLUExample(text, "", entity_spans(text, entities)))


def entity_spans(text: str, entities: Sequence[Any]) -> tuple[EntityAnnotation, ...]:
    """The entities of Rasa's parse data that have their place in ``text``, in order; one
    without a span there is left out, and of two overlapping ones the first."""
    found: list[EntityAnnotation] = []
    spans = [
        e
        for e in entities
        if isinstance(e, dict)
        and isinstance(e.get("start"), int)
        and isinstance(e.get("end"), int)
        and 0 <= e["start"] < e["end"] <= len(text)
    ]
    for e in sorted(spans, key=lambda e: int(e["start"])):
        start, end = int(e["start"]), int(e["end"])
        if found and start < found[-1].end:
            continue
        role, group = e.get("role"), e.get("group")
        found.append(
            EntityAnnotation(
                start,
                end,
                str(e.get("value")),
                str(e.get("entity")),
                None if role is None else str(role),
                None if group is None else str(group),
            )
        )
    return tuple(found)


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


def nlu_yaml(
    data: NLUData,
    *,
    examples: Iterable[NLUExample] | None = None,
    responses: Mapping[str, Sequence[ResponseVariation]] | None = None,
) -> str:
    """``data`` (its ``examples``, or those given) as an nlu.yml: intents in order of first
    use, then synonyms, regexes and lookup tables; ``responses`` (a retrieval intent's, as
    Rasa's split writes them beside its examples) under a ``responses:`` key."""
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
    document: dict[str, Any] = {"nlu": items}
    if responses:
        document["responses"] = {
            name: [variation_to_dict(v) for v in variations]
            for name, variations in responses.items()
        }
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6)
    return 'version: "3.1"\n' + body
