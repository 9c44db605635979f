"""Regexes and lookup tables from nlu.yml: token features, and entities when named after one.

Regexes run as written (case-insensitive unless case-sensitive), with the ``regex`` library,
which reads Python's ``re`` syntax and can stop a match: a message's regexes get
``REGEX_TIME_BUDGET`` seconds in all. A pattern that backtracks without end on some input
(``(a+)+$`` on a few dozen ``a``s and a ``!``) would otherwise hold the process, every other
conversation with it, for minutes or for good (Rasa's regex featurizer runs ``re`` unbounded);
past the budget it matches nothing in that message and a warning names it.

Lookup tables are matched on whole tokens, not compiled into one giant alternation: every element
becomes a tuple of token keys, so a table of 100,000 city names costs a set lookup per token
n-gram, whatever its size. Matching
whole tokens is Rasa's ``use_word_boundaries: true``; scripts without spaces (Chinese, Japanese)
still match, as the tokenizer makes each of their characters a token. With
``word_boundaries=False`` (Rasa's ``use_word_boundaries: false``) an element matches anywhere in
the text, inside words too, as Rasa's lookup regex without ``\\b`` does; the ``regex`` library's
named lists keep that a set lookup as well (the longest element wins at a position).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

import regex

from chatbot.errors import ConfigError
from chatbot.nlu.tokenizer import Token, norm, token_texts

logger = logging.getLogger(__name__)

Span = tuple[int, int]  # [start, end) character offsets

# Seconds all of a message's regexes may take together (a real one takes microseconds).
REGEX_TIME_BUDGET = 0.1
_REGEX_TIME_FLOOR = 0.01  # each regex's own least, once an earlier one spent the budget


class PatternSet:
    """The named regexes and lookup tables of a model; ``names`` orders their feature columns."""

    def __init__(
        self,
        regexes: Sequence[tuple[str, str]] = (),
        lookups: Sequence[tuple[str, Sequence[str]]] = (),
        *,
        case_sensitive: bool = False,
        word_boundaries: bool = True,
    ) -> None:
        self.regexes = tuple((name, pattern) for name, pattern in regexes)
        self.lookups = tuple((name, tuple(elements)) for name, elements in lookups)
        self.case_sensitive = case_sensitive
        self.word_boundaries = word_boundaries
        flags = regex.VERSION0 | (0 if case_sensitive else regex.IGNORECASE)
        self._compiled: dict[str, list[regex.Pattern[str]]] = {}
        for name, pattern in self.regexes:
            try:
                self._compiled.setdefault(name, []).append(regex.compile(pattern, flags))
            except regex.error as error:
                raise ConfigError(f"regex '{name}': invalid pattern {pattern!r}: {error}") from None
        self._tables: dict[str, set[tuple[str, ...]]] = {}  # whole tokens
        anywhere: dict[str, set[str]] = {}  # without word boundaries
        for name, elements in self.lookups:
            if word_boundaries:
                table = self._tables.setdefault(name, set())
                table.update(key for key in map(self._element_key, elements) if key)
            else:
                anywhere.setdefault(name, set()).update(e for e in elements if e)
        self._longest = max((len(k) for t in self._tables.values() for k in t), default=0)
        # A named list (``\L``) is matched as a set of strings, not tried one alternative a time.
        self._anywhere = {
            name: regex.compile(r"\L<elements>", flags, elements=sorted(elements))
            for name, elements in anywhere.items()
            if elements
        }
        lookup_names = {name for name, _ in self.lookups}
        names = sorted(self._compiled) + sorted(lookup_names - set(self._compiled))
        self.names: tuple[str, ...] = tuple(names)

    def _key(self, tokens: Sequence[Token]) -> tuple[str, ...]:
        return tuple(t.text if self.case_sensitive else t.norm for t in tokens)

    def _element_key(self, element: str) -> tuple[str, ...]:
        """``_key(tokenize(element))``, without making the tokens."""
        texts = token_texts(element)
        return tuple(texts) if self.case_sensitive else tuple(map(norm, texts))

    def matches(self, text: str, tokens: Sequence[Token]) -> dict[str, list[Span]]:
        """Character spans matched by each name (regex matches, then lookup elements)."""
        found: dict[str, list[Span]] = {}
        deadline = time.monotonic() + REGEX_TIME_BUDGET
        for name, patterns in self._compiled.items():
            for pattern in patterns:
                spans: list[Span] = []
                try:
                    left = max(deadline - time.monotonic(), _REGEX_TIME_FLOOR)
                    for m in pattern.finditer(text, timeout=left):
                        if m.end() > m.start():
                            spans.append((m.start(), m.end()))
                except TimeoutError:
                    logger.warning(
                        "regex '%s' (%s) was stopped after %.2f s on a message of %d characters "
                        "(a pattern that backtracks without end?): it matches nothing there",
                        name,
                        pattern.pattern[:80],
                        REGEX_TIME_BUDGET,
                        len(text),
                    )
                    continue
                if spans:
                    found.setdefault(name, []).extend(spans)
        if self._tables and tokens:
            keys = self._key(tokens)
            for i in range(len(tokens)):
                for n in range(1, min(self._longest, len(tokens) - i) + 1):
                    gram = keys[i : i + n]
                    for name, table in self._tables.items():
                        if gram in table:
                            span = (tokens[i].start, tokens[i + n - 1].end)
                            found.setdefault(name, []).append(span)
        for name, elements in self._anywhere.items():
            for m in elements.finditer(text):
                if m.end() > m.start():
                    found.setdefault(name, []).append((m.start(), m.end()))
        return found

    def token_features(
        self, matches: dict[str, list[Span]], tokens: Sequence[Token]
    ) -> list[list[float]]:
        """``[token][name]``: 1.0 where a match of that name overlaps the token."""
        rows = [[0.0] * len(self.names) for _ in tokens]
        for column, name in enumerate(self.names):
            for start, end in matches.get(name, ()):
                for i, token in enumerate(tokens):
                    if token.start < end and token.end > start:
                        rows[i][column] = 1.0
        return rows

    def to_json(self) -> dict[str, object]:
        return {
            "regexes": [list(r) for r in self.regexes],
            "lookups": [[name, list(elements)] for name, elements in self.lookups],
            "case_sensitive": self.case_sensitive,
            "word_boundaries": self.word_boundaries,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PatternSet:
        """The patterns of ``to_json``; a model file from before ``word_boundaries`` matched
        lookup elements on whole tokens."""
        return cls(
            [(str(n), str(p)) for n, p in data["regexes"]],  # type: ignore[attr-defined]
            [(str(n), tuple(e)) for n, e in data["lookups"]],  # type: ignore[attr-defined]
            case_sensitive=bool(data["case_sensitive"]),
            word_boundaries=bool(data.get("word_boundaries", True)),
        )


def regex_entities(
    text: str, matches: dict[str, list[Span]], entity_types: Iterable[str]
) -> list[dict[str, object]]:
    """RegexEntityExtractor: a match of a regex or lookup table named after an entity type."""
    entities: list[dict[str, object]] = []
    for name in entity_types:
        for start, end in sorted(set(matches.get(name, ()))):
            entities.append(
                {
                    "entity": name,
                    "start": start,
                    "end": end,
                    "value": text[start:end],
                    "confidence_entity": 1.0,
                    "extractor": "RegexEntityExtractor",
                }
            )
    return entities


def extractor_patterns(
    source: PatternSet,
    entity_types: Iterable[str],
    *,
    use_regexes: bool = True,
    use_lookup_tables: bool = True,
    word_boundaries: bool = True,
    case_sensitive: bool = False,
) -> PatternSet | None:
    """RegexEntityExtractor's own patterns, with its own options (Rasa's ``use_regexes``,
    ``use_lookup_tables``, ``use_word_boundaries``, ``case_sensitive``): those of ``source`` (the
    model's, which the RegexFeaturizer's options chose) named after an entity type. None where
    ``source``'s matches give the same entities, so a message is not matched twice."""
    names = set(entity_types)
    regexes = [(n, p) for n, p in source.regexes if n in names]
    lookups = [(n, e) for n, e in source.lookups if n in names]
    wanted_regexes = regexes if use_regexes else []
    wanted_lookups = lookups if use_lookup_tables else []
    if (
        (wanted_regexes, wanted_lookups) == (regexes, lookups)
        and case_sensitive == source.case_sensitive
        and (word_boundaries == source.word_boundaries or not lookups)
    ):
        return None
    return PatternSet(
        wanted_regexes,
        wanted_lookups,
        case_sensitive=case_sensitive,
        word_boundaries=word_boundaries,
    )


def apply_synonyms(entities: list[dict[str, object]], synonyms: dict[str, str]) -> None:
    """EntitySynonymMapper: a value becomes its canonical value (looked up lower-cased)."""
    for entity in entities:
        value = str(entity["value"])
        canonical = synonyms.get(value.lower())
        if canonical is not None and canonical != value:
            entity["value"] = canonical
            processors = entity.setdefault("processors", [])
            assert isinstance(processors, list)
            processors.append("EntitySynonymMapper")
