from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbot.nlu import tokenize
from chatbot.nlu.tokenizer import norm, token_texts


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("I don't like e-mail", ["I", "don't", "like", "e-mail"]),
        ("at 10:30 or 3.5 kg.", ["at", "10:30", "or", "3.5", "kg", "."]),
        ("mail a@b.com now", ["mail", "a@b.com", "now"]),
        ("我想订机票", ["我", "想", "订", "机", "票"]),
        ("iPhone用", ["iPhone", "用"]),
        ("हिन्दी में बात", ["हिन्दी", "में", "बात"]),  # vowel signs stay inside their word
        ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
        ("pizza 🍕🍕", ["pizza", "🍕", "🍕"]),
        ("", []),
        (" \t\n ", []),
    ],
)
def test_tokens(text: str, tokens: list[str]) -> None:
    assert [t.text for t in tokenize(text)] == tokens


@pytest.mark.parametrize(
    "text", ["  Book a table  for 2, at 7pm!! ", "Ｃａｆé naïve — ok?", "x" * 10_000, "a\u0301b c"]
)
def test_tokens_keep_their_character_offsets(text: str) -> None:
    tokens = tokenize(text)
    for token in tokens:
        assert text[token.start : token.end] == token.text
        assert not any(c.isspace() for c in token.text)
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)
    assert "".join(t.text for t in tokens) == "".join(text.split())


def test_norm_is_compatibility_folded_and_lower_cased() -> None:
    (token,) = tokenize("Ｃａｆé")
    assert token.norm == "café"


def test_turkish_dotted_capital_i_lowers_to_i_as_a_case_insensitive_regex_reads_it() -> None:
    # str.lower() makes "İ" an "i" and a combining dot: a lookup entry "İstanbul" never matched.
    assert {t.norm for t in tokenize("İstanbul ISTANBUL istanbul")} == {"istanbul"}
    assert tokenize("i\u0307")[0].norm == "i"


def test_thai_is_a_token_per_letter_with_its_marks_so_words_inside_a_run_have_edges() -> None:
    # Thai writes no spaces between words: "order pad thai at Bangkok" is one run of letters.
    text = "สั่งผัดไทยที่กรุงเทพ"
    tokens = tokenize(text)
    assert [t.text for t in tokens][:4] == ["สั่", "ง", "ผั", "ด"]  # marks stay with letters
    assert "".join(t.text for t in tokens) == text
    food = text.index("ผัดไทย")
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    assert food in starts and food + len("ผัดไทย") in ends  # an annotation of it aligns


@given(st.text(max_size=40))
def test_token_texts_are_the_tokens_texts_and_norm_folds_ascii_as_the_rest(text: str) -> None:
    # Lookup tables are keyed by token_texts and norm when a model loads (50,000 elements):
    # the keys must be the tokens' own, or an element would never match.
    assert token_texts(text) == [t.text for t in tokenize(text)]
    for word in token_texts(text):
        folded = unicodedata.normalize("NFKC", word).lower().replace("i\u0307", "i")
        assert norm(word) == folded
    ascii_text = text.encode("ascii", "replace").decode()
    assert norm(ascii_text) == unicodedata.normalize("NFKC", ascii_text).lower()
