"""From tokens to the numbers the network reads.

Per token: a word id, character ids (for the character encoder: unseen words and typos still look
like something), lexical features (LexicalSyntacticFeaturizer: case, digits, punctuation, position)
and a column per regex or lookup table (RegexFeaturizer). Per message: the ids of its word and
character n-grams (CountVectorsFeaturizer) for the intent head.

Vocabularies are plain lists, index 0 the padding and 1 the unknown entry, so they travel in a model
file's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from chatbot.nlu.patterns import PatternSet, Span
from chatbot.nlu.tokenizer import Token

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
TOKEN_CACHE_SIZE = 50_000  # tokens whose ids are kept; the cache empties when full
LEXICAL_FEATURES = (
    "lower",
    "upper",
    "title",
    "digit",
    "has_digit",
    "alpha",
    "punct",
    "short",
    "first",
    "last",
)


_DIGIT = re.compile(r"\d")


def zeroed(word: str) -> str:
    """``word`` with every digit written 0: the word a token is under ``zero_digits``."""
    return _DIGIT.sub("0", word)


def char_ngrams(word: str, low: int, high: int) -> Iterator[str]:
    """scikit-learn's ``char_wb`` n-grams: the word padded with one space on each side."""
    padded = f" {word} "
    for n in range(low, high + 1):
        for i in range(len(padded) - n + 1):
            yield padded[i : i + n]


def word_ngrams(words: Sequence[str], analyzers: Sequence[tuple[str, int, int]]) -> Iterator[str]:
    """Keys of the word n-grams of a message: ``w:book a``."""
    for analyzer, low, high in analyzers:
        if analyzer == "word":
            for n in range(low, high + 1):
                for i in range(len(words) - n + 1):
                    yield "w:" + " ".join(words[i : i + n])


def token_char_ngrams(word: str, analyzers: Sequence[tuple[str, int, int]]) -> Iterator[str]:
    """Keys of the character n-grams of one word: ``c: bo``."""
    for analyzer, low, high in analyzers:
        if analyzer != "word":
            for gram in char_ngrams(word, low, high):
                yield "c:" + gram


def sentence_ngrams(
    tokens: Sequence[Token], analyzers: Sequence[tuple[str, int, int]]
) -> Iterator[str]:
    """Keys of all the n-grams of a message, word and character."""
    words = [t.norm for t in tokens]
    yield from word_ngrams(words, analyzers)
    for word in words:
        yield from token_char_ngrams(word, analyzers)


@dataclass
class Encoded:
    """One message as arrays; T tokens, L characters per token, N n-grams."""

    words: np.ndarray  # (T,) int64
    chars: np.ndarray  # (T, L) int64
    lexical: np.ndarray  # (T, len(LEXICAL_FEATURES)) float32
    patterns: np.ndarray  # (T, P) float32
    ngrams: np.ndarray  # (N,) int64, unique


class Featurizer:
    def __init__(
        self,
        words: Sequence[str],
        chars: Sequence[str],
        ngrams: Sequence[str],
        patterns: PatternSet,
        *,
        analyzers: Sequence[tuple[str, int, int]],
        max_word_chars: int,
        lexical: bool,
        pattern_features: bool,
        zero_digits: bool = False,
    ) -> None:
        if tuple(words[:2]) != SPECIALS or tuple(chars[:2]) != SPECIALS:
            raise ValueError("a vocabulary must begin with the padding and unknown entries")
        for what, names in (("words", words), ("chars", chars), ("ngrams", ngrams)):
            if not all(isinstance(name, str) for name in names):
                raise ValueError(f"the featurizer's {what} must be strings")
        if max_word_chars < 1:
            raise ValueError(f"max_word_chars must be at least 1, got {max_word_chars!r}")
        self.words = list(words)
        self.chars = list(chars)
        self.ngrams = list(ngrams)
        self.patterns = patterns
        self.analyzers = [(str(a), int(low), int(high)) for a, low, high in analyzers]
        self.max_word_chars = max_word_chars
        self.lexical = lexical
        self.pattern_features = pattern_features
        # Words are looked up with every digit 0 (flight 838 and flight 1207 are one word); the
        # characters keep the digits.
        self.zero_digits = zero_digits
        self._word_ids = {w: i for i, w in enumerate(self.words)}
        self._char_ids = {c: i for i, c in enumerate(self.chars)}
        self._ngram_ids = {g: i for i, g in enumerate(self.ngrams)}
        self._word_analyzers = any(a[0] == "word" for a in self.analyzers)
        self._cache: dict[str, tuple[int, list[int], list[int]]] = {}

    @property
    def n_lexical(self) -> int:
        return len(LEXICAL_FEATURES) if self.lexical else 0

    @property
    def n_patterns(self) -> int:
        return len(self.patterns.names) if self.pattern_features else 0

    def encode(
        self, text: str, tokens: Sequence[Token], matches: dict[str, list[Span]] | None = None
    ) -> Encoded:
        if matches is None:
            matches = self.patterns.matches(text, tokens)
        n = len(tokens)
        cached = [self._token(t) for t in tokens]
        words = np.fromiter((c[0] for c in cached), np.int64, n)
        width = max((len(c[1]) for c in cached), default=1)
        chars = np.zeros((n, width), np.int64)
        for i, (_, ids, _) in enumerate(cached):
            chars[i, : len(ids)] = ids
        lexical = np.asarray(
            [_lexical(t.text, i, n) for i, t in enumerate(tokens)] if self.lexical else [],
            np.float32,
        ).reshape(n, self.n_lexical)
        patterns = np.asarray(
            self.patterns.token_features(matches, tokens) if self.n_patterns else [], np.float32
        ).reshape(n, self.n_patterns)
        found = {i for c in cached for i in c[2]}
        norms = [t.norm for t in tokens] if self._word_analyzers else []
        ngram_ids = self._ngram_ids
        found.update(ngram_ids.get(g, -1) for g in word_ngrams(norms, self.analyzers))
        found.discard(-1)
        ngrams = np.asarray(sorted(found), np.int64)
        return Encoded(words, chars, lexical, patterns, ngrams)

    def _token(self, token: Token) -> tuple[int, list[int], list[int]]:
        """Word id, character ids and character n-gram ids of a token, cached by its text."""
        hit = self._cache.get(token.text)
        if hit is None:
            norm = token.norm
            char_ids, ngram_ids = self._char_ids, self._ngram_ids
            hit = (
                self._word_ids.get(zeroed(norm) if self.zero_digits else norm, UNK),
                [char_ids.get(c, UNK) for c in self._clip(token.text)],
                [
                    i
                    for i in (ngram_ids.get(g, -1) for g in token_char_ngrams(norm, self.analyzers))
                    if i >= 0
                ],
            )
            if len(self._cache) >= TOKEN_CACHE_SIZE:
                self._cache.clear()
            self._cache[token.text] = hit
        return hit

    def _clip(self, word: str) -> str:
        limit = self.max_word_chars
        if len(word) <= limit:
            return word
        head = (limit + 1) // 2
        return word[:head] + word[len(word) - (limit - head) :]

    def to_json(self) -> dict[str, object]:
        return {
            "words": self.words,
            "chars": self.chars,
            "ngrams": self.ngrams,
            "patterns": self.patterns.to_json(),
            "analyzers": [list(a) for a in self.analyzers],
            "max_word_chars": self.max_word_chars,
            "lexical": self.lexical,
            "pattern_features": self.pattern_features,
            "zero_digits": self.zero_digits,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Featurizer:
        return cls(
            data["words"],  # type: ignore[arg-type]
            data["chars"],  # type: ignore[arg-type]
            data["ngrams"],  # type: ignore[arg-type]
            PatternSet.from_json(data["patterns"]),  # type: ignore[arg-type]
            analyzers=[(str(a), int(lo), int(hi)) for a, lo, hi in data["analyzers"]],  # type: ignore[attr-defined]
            max_word_chars=int(data["max_word_chars"]),  # type: ignore[call-overload]
            lexical=bool(data["lexical"]),
            pattern_features=bool(data["pattern_features"]),
            zero_digits=bool(data.get("zero_digits", False)),  # older files: the words as written
        )


def _lexical(word: str, index: int, count: int) -> list[float]:
    return [
        float(word.islower()),
        float(word.isupper()),
        float(word.istitle()),
        float(word.isdigit()),
        float(any(c.isdigit() for c in word)),
        float(word.isalpha()),
        float(not any(c.isalnum() for c in word)),
        float(len(word) <= 2),
        float(index == 0),
        float(index == count - 1),
    ]
