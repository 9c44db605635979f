"""NLU training data: annotated examples, synonyms, regexes and lookup tables (Rasa's nlu.yml).

Reading them is ``chatbot.project.nlu_reader``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbot.project.domain import NO_ORIGIN, Origin


@dataclass(frozen=True)
class EntityAnnotation:
    """One entity in an example: ``[text](entity)`` or ``[text]{"entity": .., "role": ..}``.

    ``start``/``end`` are character offsets into the example's plain text; ``value`` is the
    canonical value (a synonym's target when ``value`` was given, else the covered text).
    """

    start: int
    end: int
    value: str
    entity: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class NLUExample:
    text: str  # plain text, annotation markup removed
    intent: str  # may be a retrieval intent ``faq/ask_name``
    entities: tuple[EntityAnnotation, ...] = ()
    origin: Origin = NO_ORIGIN

    @property
    def base_intent(self) -> str:
        return self.intent.split("/", 1)[0]


@dataclass(frozen=True)
class RegexFeature:
    name: str
    pattern: str
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class LookupTable:
    name: str
    elements: tuple[str, ...]
    origin: Origin = NO_ORIGIN


@dataclass
class NLUData:
    examples: list[NLUExample] = field(default_factory=list)
    # Lower-cased variant -> canonical value (``synonym:`` blocks and ``value`` in annotations).
    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: list[RegexFeature] = field(default_factory=list)
    lookups: list[LookupTable] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    @property
    def entity_types(self) -> list[str]:
        return sorted({a.entity for e in self.examples for a in e.entities})

    def merge(self, other: NLUData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        self.regexes.extend(other.regexes)
        self.lookups.extend(other.lookups)
