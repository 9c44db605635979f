"""Fitting the featurizer and label sets to training data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from chatbot.nlu.features import SPECIALS, Featurizer, sentence_ngrams, zeroed
from chatbot.nlu.model import Labels
from chatbot.nlu.patterns import PatternSet
from chatbot.nlu.settings import NLUSettings
from chatbot.nlu.tokenizer import tokenize
from chatbot.project.training_data import NLUData, NLUExample

MAX_WORDS = 50_000
MAX_CHARS = 2_000


def fit_featurizer(
    examples: Sequence[NLUExample], data: NLUData, settings: NLUSettings
) -> Featurizer:
    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    ngrams: Counter[str] = Counter()  # document frequency
    for example in examples:
        tokens = tokenize(example.text)[: settings.max_tokens]
        words.update(zeroed(t.norm) if settings.zero_digits else t.norm for t in tokens)
        chars.update(c for t in tokens for c in t.text)
        ngrams.update(set(sentence_ngrams(tokens, settings.count_vectors)))
    regexes = [(r.name, r.pattern) for r in data.regexes] if settings.use_regexes else []
    lookups = [(t.name, t.elements) for t in data.lookups] if settings.use_lookup_tables else []
    patterns = PatternSet(regexes, lookups, case_sensitive=settings.case_sensitive)
    return Featurizer(
        [*SPECIALS, *_most_common(words, MAX_WORDS)],
        [*SPECIALS, *_most_common(chars, MAX_CHARS)],
        _most_common(ngrams, settings.count_vectors_max_features),
        patterns,
        analyzers=settings.count_vectors,
        max_word_chars=settings.max_word_chars,
        lexical=settings.lexical_features,
        pattern_features=settings.pattern_features,
        zero_digits=settings.zero_digits,
    )


def _most_common(counts: Counter[str], limit: int) -> list[str]:
    """The ``limit`` most frequent keys, ties broken alphabetically (reproducible)."""
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def fit_labels(examples: Sequence[NLUExample], settings: NLUSettings) -> Labels:
    entities = [a for e in examples for a in e.entities]
    return Labels(
        intents=tuple(sorted({e.base_intent for e in examples})),
        entity_types=tuple(sorted({a.entity for a in entities})),
        roles=("", *sorted({a.role for a in entities if a.role})),
        groups=("", *sorted({a.group for a in entities if a.group})),
        response_keys=tuple(sorted({e.intent for e in examples if "/" in e.intent})),
    )


def collect_synonyms(data: NLUData, examples: Sequence[NLUExample]) -> dict[str, str]:
    """``synonym:`` blocks plus annotations whose value differs from their text."""
    synonyms = dict(data.synonyms)
    for example in examples:
        for a in example.entities:
            written = example.text[a.start : a.end]
            if written and written != a.value:
                synonyms.setdefault(written.lower(), a.value)
    return synonyms
