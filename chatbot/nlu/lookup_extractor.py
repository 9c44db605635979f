"""Entities from lookup tables and regexes alone, for a bot with no NLU model to train.

A project whose stories are end-to-end (``- user: "..."``) needs no intents, but its slots still
want the entities of a message: the restaurant's cuisine, the city. Rasa's answer is the
``RegexEntityExtractor`` with ``use_lookup_tables``: a lookup table or regex named after an entity
type marks that entity wherever it matches (case-insensitive by default; a lookup element on
whole tokens, or anywhere in the text, inside words too, with ``use_word_boundaries: false``), and
``EntitySynonymMapper`` maps each value to its canonical form::

    nlu:
    - lookup: cuisine
      examples: |
        - italian
        - british
    - synonym: moderate
      examples: |
        - moderately

    pipeline:
    - name: RegexEntityExtractor
      use_lookup_tables: true
      use_regexes: true
      case_sensitive: false

Training keeps it in the model file as JSON (the tables with the options that match them, the
synonyms, the entity types), and it parses like an NLU model, without an intent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chatbot.errors import ConfigError
from chatbot.nlu.patterns import PatternSet, apply_synonyms, regex_entities
from chatbot.nlu.tokenizer import tokenize
from chatbot.nlu.types import (
    EntityPrediction,
    IntentPrediction,
    ParseResult,
    parse_off_the_loop_if_long,
)
from chatbot.project.training_data import NLUData

KIND = "lookup_entities"
COMPONENT = "RegexEntityExtractor"
_OPTIONS = ("use_lookup_tables", "use_regexes", "use_word_boundaries", "case_sensitive")


class LookupEntityExtractor:
    """Entities where a lookup table or regex named after an entity type matches."""

    def __init__(
        self,
        patterns: PatternSet,
        entity_types: Sequence[str],
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self.patterns = patterns
        self.entity_types = tuple(sorted(set(entity_types) & set(patterns.names)))
        self.synonyms = {k.lower(): v for k, v in (synonyms or {}).items()}

    @classmethod
    def from_nlu_data(
        cls,
        data: NLUData,
        entity_types: Sequence[str],
        options: Mapping[str, Any] | None = None,
        *,
        where: str = "",
    ) -> LookupEntityExtractor:
        """The extractor a pipeline entry's ``options`` ask for (Rasa's keys; unknown keys are a
        ConfigError naming them, prefixed with ``where``: "config.yml:4: ")."""
        opts = dict(options or {})
        unknown = sorted(set(opts) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"{where}{COMPONENT}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(_OPTIONS)}"
            )
        for key, value in opts.items():
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{where}{COMPONENT}: '{key}' must be true or false, not {value!r}"
                )
        lookups: list[tuple[str, tuple[str, ...]]] = []
        regexes: list[tuple[str, str]] = []
        if opts.get("use_lookup_tables", True):
            lookups = [(t.name, t.elements) for t in data.lookups]
        if opts.get("use_regexes", True):
            regexes = [(r.name, r.pattern) for r in data.regexes]
        patterns = PatternSet(
            regexes,
            lookups,
            case_sensitive=bool(opts.get("case_sensitive", False)),
            word_boundaries=bool(opts.get("use_word_boundaries", True)),
        )
        return cls(patterns, entity_types, data.synonyms)

    def entities(self, text: str) -> list[EntityPrediction]:
        """The entities of a message, in text order, values mapped through the synonyms."""
        tokens = tokenize(text)
        matches = self.patterns.matches(text, tokens)
        found = regex_entities(text, matches, self.entity_types)
        if self.synonyms:
            apply_synonyms(found, self.synonyms)
        found.sort(key=lambda e: (int(e["start"]), int(e["end"])))  # type: ignore[call-overload]
        return found  # type: ignore[return-value]

    def parse(self, text: str) -> ParseResult:
        none: IntentPrediction = {"name": None, "confidence": 0.0}
        return {"text": text, "intent": none, "entities": self.entities(text), "intent_ranking": []}

    async def parse_async(self, text: str) -> ParseResult:
        """As ``NLUModel.parse_async``: a short message right here, a long one in a thread."""
        return await parse_off_the_loop_if_long(self.parse, text)

    # -- the model file --------------------------------------------------------------------------

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = {
            "kind": KIND,
            "patterns": self.patterns.to_json(),
            "entity_types": list(self.entity_types),
            "synonyms": dict(self.synonyms),
        }
        return {}, meta

    @classmethod
    def from_export(
        cls, tensors: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> LookupEntityExtractor:
        del tensors  # none: tables and synonyms are JSON
        return cls(
            PatternSet.from_json(dict(meta["patterns"])),
            list(meta["entity_types"]),
            dict(meta.get("synonyms") or {}),
        )


def extractor_for(
    data: NLUData, entity_types: Sequence[str], pipeline: Sequence[Any]
) -> LookupEntityExtractor | None:
    """The extractor for a project without NLU examples: with the options of the pipeline's
    ``RegexEntityExtractor`` entry, or the defaults when the pipeline is empty; None when the
    pipeline leaves it out or no lookup table or regex is named after an entity type."""
    entries = [c for c in pipeline if c.name == COMPONENT]
    if pipeline and not entries:
        return None
    options, where = None, ""
    if entries:
        options, origin = entries[0].params, entries[0].origin
        where = origin.prefix
    extractor = LookupEntityExtractor.from_nlu_data(data, entity_types, options, where=where)
    return extractor if extractor.entity_types else None
