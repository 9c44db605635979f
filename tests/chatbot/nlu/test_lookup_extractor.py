"""Entities from lookup tables and regexes without a trained NLU model (RegexEntityExtractor)."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.errors import ConfigError
from chatbot.nlu.lookup_extractor import LookupEntityExtractor, extractor_for
from chatbot.project.config import ComponentConfig
from chatbot.project.training_data import LookupTable, NLUData, RegexFeature

DATA = NLUData(
    synonyms={"moderately": "moderate", "the cow pizza": "the_cow_pizza"},
    regexes=[RegexFeature("party_size", r"\b(?:two|four|six)\b")],
    lookups=[
        LookupTable("price", ("cheap", "moderately", "expensive")),
        LookupTable("restaurant", ("the cow pizza", "nandos")),
        LookupTable("colour", ("red",)),  # not an entity type: never an entity
    ],
)
ENTITIES = ["price", "restaurant", "party_size"]


def found(extractor: LookupEntityExtractor, text: str) -> list[tuple[str, str, str]]:
    return [
        (e["entity"], text[e["start"] : e["end"]], e["value"]) for e in extractor.entities(text)
    ]


def test_tables_and_regexes_named_after_entities_give_entities_with_synonyms() -> None:
    extractor = LookupEntityExtractor.from_nlu_data(DATA, ENTITIES)
    text = "A Moderately priced table for two at The Cow Pizza, not red"
    assert found(extractor, text) == [
        ("price", "Moderately", "moderate"),
        ("party_size", "two", "two"),
        ("restaurant", "The Cow Pizza", "the_cow_pizza"),
    ]
    assert found(extractor, "cheapest nandosx") == []  # whole tokens only
    parsed = extractor.parse("cheap")
    assert parsed["intent"]["name"] is None and parsed["entities"][0]["value"] == "cheap"


@pytest.mark.parametrize(
    ("options", "want"),
    [
        ({"use_lookup_tables": False}, [("party_size", "two", "two")]),
        ({"use_regexes": False}, [("price", "cheap", "cheap")]),
        ({"case_sensitive": True}, [("party_size", "two", "two")]),
    ],
)
def test_options_as_rasa_names_them(options: dict[str, Any], want: list[Any]) -> None:
    extractor = LookupEntityExtractor.from_nlu_data(DATA, ENTITIES, options)
    assert (
        found(extractor, "Cheap for two" if options.get("case_sensitive") else "cheap for two")
        == want
    )


@pytest.mark.parametrize(
    ("options", "text", "want"),
    [
        (
            {},
            "cheapest at nandosx, for twofold",
            [],
        ),
        (
            {"use_word_boundaries": False},
            "cheapest at nandosx, for twofold",
            [("price", "cheap", "cheap"), ("restaurant", "nandos", "nandos")],
        ),
        (
            {"use_word_boundaries": False, "case_sensitive": True},
            "Cheapest, expensively",
            [("price", "expensive", "expensive")],
        ),
    ],
)
def test_use_word_boundaries_false_matches_lookup_elements_inside_words(
    options: dict[str, Any], text: str, want: list[Any]
) -> None:
    """As Rasa's lookup regex without ``\\b``; regexes keep their own ``\\b`` ("twofold")."""
    pipeline = [ComponentConfig("RegexEntityExtractor", options)]
    extractor = extractor_for(DATA, ENTITIES, pipeline)
    assert extractor is not None
    assert found(extractor, text) == want
    tensors, meta = extractor.export()
    assert found(LookupEntityExtractor.from_export(tensors, meta), text) == want


def test_a_model_file_from_before_word_boundaries_matches_whole_tokens() -> None:
    tensors, meta = LookupEntityExtractor.from_nlu_data(DATA, ENTITIES).export()
    del meta["patterns"]["word_boundaries"]
    loaded = LookupEntityExtractor.from_export(tensors, meta)
    assert found(loaded, "cheapest nandos") == [("restaurant", "nandos", "nandos")]


def test_the_model_file_form_parses_the_same() -> None:
    extractor = LookupEntityExtractor.from_nlu_data(DATA, ENTITIES)
    tensors, meta = extractor.export()
    assert tensors == {}
    loaded = LookupEntityExtractor.from_export(tensors, meta)
    text = "moderately priced for six at nandos"
    assert loaded.parse(text) == extractor.parse(text)


def test_a_bad_option_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="use_lookups"):
        extractor_for(DATA, ENTITIES, [ComponentConfig("RegexEntityExtractor", {"use_lookups": 1})])
    with pytest.raises(ConfigError, match="case_sensitive"):
        LookupEntityExtractor.from_nlu_data(DATA, ENTITIES, {"case_sensitive": "yes"})


def test_which_pipelines_get_an_extractor() -> None:
    assert extractor_for(DATA, ENTITIES, []) is not None  # nothing else to find entities with
    listed = [ComponentConfig("WhitespaceTokenizer"), ComponentConfig("RegexEntityExtractor")]
    assert extractor_for(DATA, ENTITIES, listed) is not None
    assert extractor_for(DATA, ENTITIES, [ComponentConfig("WhitespaceTokenizer")]) is None
    assert extractor_for(DATA, ["city"], []) is None  # no table named after an entity
