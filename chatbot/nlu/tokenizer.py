"""Splitting a message into tokens that keep their character offsets.

A token is a run of letters, digits and combining marks (``don't``, ``e-mail``, ``10:30`` and
``3.5`` stay whole), a single CJK ideograph or kana, or a single Thai, Lao, Khmer or Myanmar
letter with its vowel signs and tone marks (those scripts write no spaces between words: as
Rasa's lookup tables match inside them, ours match a table's entries, and an annotation that
ends within a run of text ends at a token), or a single other character (punctuation, symbols,
emoji). Whitespace separates tokens and is never one.

Python's ``\\w`` leaves out combining marks (the vowel signs of Devanagari, Arabic harakat), so the
word class adds the Basic Multilingual Plane's marks, collected once at import.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass

# Scripts written without spaces: one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
# Characters that join two word parts into one token: it's, e-mail, 10:30, 3.5, a@b.com, km/h.
_JOINERS = "'\u2019.\\-@:/&_"
# Southeast Asian scripts written without spaces: a token per letter and its marks.
_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"


def _mark_class() -> str:
    """A character-class body holding every combining mark (Mn, Mc, Me) of the BMP."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x300, 0x10000):
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


_MARKS = _mark_class()
_WORD_CHAR = f"(?:[^\\W{_CJK}{_UNSPACED}]|[{_MARKS}])"
_TOKEN_RE = re.compile(
    f"[{_CJK}]"  # one ideograph or kana
    f"|[{_UNSPACED}][{_MARKS}]*"  # one Thai, Lao, Khmer or Myanmar letter with its marks
    f"|{_WORD_CHAR}+(?:[{_JOINERS}]{_WORD_CHAR}+)*"  # a word, maybe joined: it's, 10:30
    r"|[^\s]",  # anything else that is not a space: punctuation, symbols, emoji
)
assert sys.maxunicode > 0xFFFF, "a narrow Python build cannot hold the CJK extension ranges"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its text as written and its ``[start, end)`` character offsets."""

    text: str
    start: int
    end: int

    @property
    def norm(self) -> str:
        """The lookup key: compatibility-normalised and lower-cased (``Ｃａｆé`` -> ``café``;
        Turkish ``İ`` -> ``i``, as a case-insensitive regex matches it, where ``lower()`` gives
        ``i`` and a combining dot)."""
        return norm(self.text)


def norm(text: str) -> str:
    """``Token.norm`` of a token's text."""
    if text.isascii():  # NFKC leaves ASCII as it is
        return text.lower()
    lowered = unicodedata.normalize("NFKC", text).lower()
    return lowered.replace("i\u0307", "i") if "\u0307" in lowered else lowered


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; ``text[t.start:t.end] == t.text`` for every token."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def token_texts(text: str) -> list[str]:
    """The texts of ``tokenize(text)``'s tokens, without their offsets (faster: a lookup
    table's 50,000 elements are split so when a model is loaded)."""
    return _TOKEN_RE.findall(text)
