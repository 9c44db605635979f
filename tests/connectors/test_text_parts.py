"""Long texts in parts: measured as the platforms count (UTF-16 units) and never cut inside a
grapheme cluster (an emoji with its skin tone, a ZWJ family, a flag, a letter and its accent)."""

from __future__ import annotations

import pytest
import regex

from connectors.telegram_messages import split_text as telegram_split
from connectors.text_parts import fitting_end, split_text

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 8 UTF-16 units, one grapheme
THUMB = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone: 4 units
FLAGS = "\U0001f1e9\U0001f1ea\U0001f1eb\U0001f1f7"  # Germany, France: 4 units each
ACCENTED = "e\u0301"  # e and a combining acute accent


def units(text: str) -> int:
    """UTF-16 code units, as JavaScript's string length counts them."""
    return len(text.encode("utf-16-le")) // 2


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


@pytest.mark.parametrize("split", [split_text, telegram_split])
@pytest.mark.parametrize(
    "text", [FAMILY * 50, THUMB * 99, FLAGS * 37, ACCENTED * 301, ("ab" + THUMB) * 77]
)
@pytest.mark.parametrize("limit", [7, 10, 33])
def test_parts_keep_to_the_limit_and_cut_between_graphemes(
    split: object, text: str, limit: int
) -> None:
    parts = split(text, limit)  # type: ignore[operator]
    assert "".join(parts) == text
    assert all(0 < units(part) <= limit for part in parts)
    if max(units(g) for g in graphemes(text)) <= limit:
        # Each part is whole graphemes: the text's graphemes, in order, part after part.
        assert [g for part in parts for g in graphemes(part)] == graphemes(text)


def test_spaces_are_still_where_a_text_is_cut() -> None:
    text = "word " * 30
    assert all(len(part) <= 20 for part in split_text(text, 20))
    assert all(not part.startswith(" ") for part in split_text(text, 20))


def test_a_grapheme_longer_than_the_limit_is_cut_inside_rather_than_never() -> None:
    text = "a" + "\u0301" * 30  # one grapheme of 31 characters
    assert fitting_end(text, 10) == 10
    assert "".join(split_text(text, 10)) == text
