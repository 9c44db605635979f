from __future__ import annotations

import subprocess
import sys

import pytest

from chatbot.errors import ConfigError
from chatbot.nlu.patterns import PatternSet, apply_synonyms, extractor_patterns, regex_entities
from chatbot.nlu.tokenizer import tokenize

PATTERNS = PatternSet(
    [("zipcode", r"\b\d{5}\b"), ("zipcode", r"\bzip-\d{4}\b")],
    [("city", ("New York", "Berlin")), ("fruit", ("apple",))],
)


def test_feature_columns_are_named_and_ordered() -> None:
    assert PATTERNS.names == ("zipcode", "city", "fruit")


def test_regexes_and_multi_word_lookups_match_case_insensitively() -> None:
    text = "from NEW YORK to berlin, zip 10115 or zip-1234"
    tokens = tokenize(text)
    matches = PATTERNS.matches(text, tokens)
    assert matches["city"] == [(5, 13), (17, 23)]
    assert sorted(matches["zipcode"]) == [(29, 34), (38, 46)]
    features = PATTERNS.token_features(matches, tokens)
    words = [t.text for t in tokens]
    assert [row[1] for row in features] == [float(w in ("NEW", "YORK", "berlin")) for w in words]


def test_lookups_match_whole_tokens_only() -> None:
    text = "pineapple apples apple"
    assert PATTERNS.matches(text, tokenize(text)) == {"fruit": [(17, 22)]}


@pytest.mark.parametrize(
    ("case_sensitive", "spans"),
    [(False, [(0, 5), (6, 11), (16, 21)]), (True, [(6, 11), (16, 21)])],
)
def test_without_word_boundaries_lookups_match_inside_words(
    case_sensitive: bool, spans: list[tuple[int, int]]
) -> None:
    """Rasa's ``use_word_boundaries: false``: the lookup regex without ``\\b`` matches inside
    words too."""
    patterns = PatternSet(
        [],
        [("fruit", ("apple", ""))],
        case_sensitive=case_sensitive,
        word_boundaries=False,
    )
    text = "APPLE apple pineapple"
    assert patterns.matches(text, tokenize(text)) == {"fruit": spans}
    assert patterns.names == ("fruit",)
    again = PatternSet.from_json(patterns.to_json())
    assert again.matches(text, tokenize(text)) == {"fruit": spans}


def test_patterns_from_before_word_boundaries_match_whole_tokens() -> None:
    data = PATTERNS.to_json()
    del data["word_boundaries"]
    text = "pineapple apples apple"
    assert PatternSet.from_json(data).matches(text, tokenize(text)) == {"fruit": [(17, 22)]}


def test_the_extractor_shares_the_features_matches_where_its_options_agree() -> None:
    assert extractor_patterns(PATTERNS, ["city", "zipcode"]) is None
    # Options that change nothing here (no regex is named after an entity type) need no set.
    assert extractor_patterns(PATTERNS, ["city"], use_regexes=False) is None


@pytest.mark.parametrize(
    ("options", "found"),
    [
        ({"use_lookup_tables": False}, [("zipcode", "12345")]),
        ({"use_regexes": False}, [("city", "BERLIN"), ("fruit", "apple")]),
        (
            {"word_boundaries": False},
            [("zipcode", "12345"), ("city", "BERLIN"), ("fruit", "apple"), ("fruit", "apple")],
        ),
        ({"case_sensitive": True, "use_regexes": False}, [("fruit", "apple")]),
    ],
)
def test_the_extractor_finds_what_its_own_options_say(
    options: dict[str, bool], found: list[tuple[str, str]]
) -> None:
    text = "zip 12345 in BERLIN with pineapple or apple"
    types = ["zipcode", "city", "fruit"]
    own = extractor_patterns(PATTERNS, types, **options)
    assert own is not None
    entities = regex_entities(text, own.matches(text, tokenize(text)), types)
    assert [(e["entity"], e["value"]) for e in entities] == found


def test_case_sensitive_patterns() -> None:
    patterns = PatternSet([], [("city", ("Berlin",))], case_sensitive=True)
    text = "berlin Berlin"
    assert patterns.matches(text, tokenize(text)) == {"city": [(7, 13)]}


def test_invalid_regex_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="regex 'bad'"):
        PatternSet([("bad", "(unclosed")])


def test_json_round_trip() -> None:
    again = PatternSet.from_json(PATTERNS.to_json())
    text = "Berlin 12345"
    assert again.matches(text, tokenize(text)) == PATTERNS.matches(text, tokenize(text))


def test_regex_entities_use_names_that_are_entity_types() -> None:
    text = "zip 12345 in Berlin"
    matches = PATTERNS.matches(text, tokenize(text))
    entities = regex_entities(text, matches, ["zipcode", "city"])
    assert [(e["entity"], e["value"], e["extractor"]) for e in entities] == [
        ("zipcode", "12345", "RegexEntityExtractor"),
        ("city", "Berlin", "RegexEntityExtractor"),
    ]


def test_synonyms_replace_values_and_say_so() -> None:
    entities = [{"entity": "city", "value": "NYC"}, {"entity": "city", "value": "Paris"}]
    apply_synonyms(entities, {"nyc": "New York"})
    assert entities == [
        {"entity": "city", "value": "New York", "processors": ["EntitySynonymMapper"]},
        {"entity": "city", "value": "Paris"},
    ]


def test_a_regex_that_backtracks_without_end_is_stopped_and_matches_nothing() -> None:
    """`(a+)+$` on 3,000 `a`s and a `!` backtracks for longer than the universe lasts, and `re`
    holds the process (every conversation) while it does: the regex gets a time budget. Run in
    a process of its own, so that a regression fails here instead of hanging the suite."""
    code = (
        "import logging, time\n"
        "logging.basicConfig(format='%(message)s')\n"
        "from chatbot.nlu.patterns import PatternSet\n"
        "from chatbot.nlu.tokenizer import tokenize\n"
        "patterns = PatternSet([('evil', r'(a+)+$'), ('digits', r'\\d+')])\n"
        "text = 'a' * 3000 + '! 42'\n"
        "print(patterns.matches(text, tokenize(text)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "{'digits': [(3002, 3004)]}"
    assert "regex 'evil' ((a+)+$) was stopped after 0.10 s" in done.stderr


def test_a_lookup_entry_with_turkish_dotted_capital_i_matches_any_case() -> None:
    patterns = PatternSet([], [("city", ("İstanbul",))])
    for text in ("to ISTANBUL", "to istanbul", "to İstanbul"):
        assert patterns.matches(text, tokenize(text)) == {"city": [(3, len(text))]}


def test_a_lookup_entry_matches_inside_thai_text_as_rasas_lookup_regex_does() -> None:
    patterns = PatternSet([], [("food", ("ผัดไทย",))])
    text = "สั่งผัดไทยที่กรุงเทพ"
    start = text.index("ผัดไทย")
    assert patterns.matches(text, tokenize(text)) == {"food": [(start, start + len("ผัดไทย"))]}
