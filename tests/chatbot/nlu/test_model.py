from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from chatbot import model_file
from chatbot.errors import ModelFileError
from chatbot.nlu import NLU_FALLBACK, NLUModel
from chatbot.nlu.types import INLINE_PARSE_CHARS, ParseResult
from chatbot.project.config import ComponentConfig
from tests.chatbot.nlu.toy import toy_data
from training.nlu import train_nlu


def entities_of(result: dict) -> list[tuple]:
    return sorted(
        (e["entity"], e["start"], e["end"], e["value"], e.get("role"), e.get("group"))
        for e in result["entities"]
    )


def test_learns_the_toy_data_perfectly(toy_model: NLUModel) -> None:
    for example in toy_data().examples:
        result = toy_model.parse(example.text)
        assert result["intent"]["name"] == example.base_intent, example.text
        expected = sorted(
            (a.entity, a.start, a.end, a.value, a.role, a.group) for a in example.entities
        )
        assert entities_of(result) == expected, example.text


def test_parse_data_has_rasas_shape(toy_model: NLUModel) -> None:
    result = toy_model.parse("fly from Berlin to Paris")
    assert set(result) == {"text", "intent", "entities", "intent_ranking", "response_selector"}
    assert result["text"] == "fly from Berlin to Paris"
    ranking = result["intent_ranking"]
    assert 1 < len(ranking) <= 10
    assert ranking[0] == result["intent"]
    assert [r["confidence"] for r in ranking] == sorted(
        (r["confidence"] for r in ranking), reverse=True
    )
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-4)
    for entity in result["entities"]:
        assert entity["extractor"] == "BiLSTMCRF"
        assert 0.0 < entity["confidence_entity"] <= 1.0
    json.dumps(result)  # plain JSON types only


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unseen cities (in the lookup table), roles from word order
        (
            "fly from Hamburg to Tokyo",
            [("city", 9, 16, "Hamburg", "from", None), ("city", 20, 25, "Tokyo", "to", None)],
        ),
        # a synonym maps to its canonical value; offsets stay on the written text
        (
            "fly from nyc to berlin",
            [("city", 9, 12, "New York", "from", None), ("city", 16, 22, "berlin", "to", None)],
        ),
        # groups tie each size to its pizza
        (
            "i want a small funghi and a large salami",
            [
                ("pizza", 15, 21, "funghi", None, "1"),
                ("pizza", 34, 40, "salami", None, "2"),
                ("size", 9, 14, "small", None, "1"),
                ("size", 28, 33, "large", None, "2"),
            ],
        ),
        # an unseen zip code, found by the regex feature
        ("my zip code is 55555", [("zipcode", 15, 20, "55555", None, None)]),
    ],
)
def test_extracts_entities_with_offsets_roles_groups_and_synonyms(
    toy_model: NLUModel, text: str, expected: list[tuple]
) -> None:
    result = toy_model.parse(text)
    assert entities_of(result) == expected
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]].lower() in (
            entity["value"].lower(),
            "nyc",
        )


def test_synonym_replacement_is_marked(toy_model: NLUModel) -> None:
    (nyc,) = [e for e in toy_model.parse("fly from NYC to Rome")["entities"] if e["start"] == 9]
    assert nyc["value"] == "New York"
    assert nyc["processors"] == ["EntitySynonymMapper"]


def with_settings(model: NLUModel, **changes: object) -> NLUModel:
    settings = dataclasses.replace(model.settings, **changes)
    return NLUModel(settings, model.labels, model.featurizer, model.runtime, model.synonyms)


def test_falls_back_below_the_threshold(toy_model: NLUModel) -> None:
    strict = with_settings(toy_model, fallback_threshold=0.999999, ambiguity_threshold=0.0)
    result = strict.parse("asdf qwer zxcv")
    assert result["intent"] == {"name": NLU_FALLBACK, "confidence": 0.999999}
    assert result["intent_ranking"][0] == result["intent"]
    assert result["intent_ranking"][1]["name"] != NLU_FALLBACK  # the model's own ranking follows


def test_falls_back_when_the_top_two_are_too_close(toy_model: NLUModel) -> None:
    ambiguous = with_settings(toy_model, fallback_threshold=0.0, ambiguity_threshold=1.0)
    assert ambiguous.parse("hello")["intent"]["name"] == NLU_FALLBACK


def test_default_pipeline_keeps_confident_predictions(toy_model: NLUModel) -> None:
    assert toy_model.settings.fallback_threshold == 0.3
    assert toy_model.parse("good morning")["intent"]["name"] == "greet"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_input_is_a_clear_fallback(toy_model: NLUModel, text: str) -> None:
    result = toy_model.parse(text)
    assert result == {
        "text": text,
        "intent": {"name": NLU_FALLBACK, "confidence": 1.0},
        "entities": [],
        "intent_ranking": [{"name": NLU_FALLBACK, "confidence": 1.0}],
    }


def test_very_long_input_gets_a_clear_result(toy_model: NLUModel) -> None:
    text = ("fly from Berlin to Paris and then " * 400)[:10_000]
    assert len(text) == 10_000
    result = toy_model.parse(text)
    assert result["text"] == text
    assert result["intent"]["name"] in {*toy_model.intents, NLU_FALLBACK}
    assert result["entities"], "the start of a long message is still read"
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["value"]
    assert all(e["end"] <= len(text) for e in result["entities"])
    # one 10,000-character "word" too
    assert toy_model.parse("x" * 10_000)["intent"]["name"] in {*toy_model.intents, NLU_FALLBACK}


@pytest.mark.parametrize(
    "text", ["我想订一张去北京的机票", "Привет, как дела?", "مرحبا", "नमस्ते दोस्त", "🍕🍕🍕"]
)
def test_non_latin_input_gets_a_valid_result(toy_model: NLUModel, text: str) -> None:
    result = toy_model.parse(text)
    assert result["text"] == text
    assert result["intent"]["name"] in {*toy_model.intents, NLU_FALLBACK}
    for entity in result["entities"]:
        assert entity["value"] == text[entity["start"] : entity["end"]]


def test_retrieval_intents_select_a_response(toy_model: NLUModel) -> None:
    result = toy_model.parse("what is your name")
    assert result["intent"]["name"] == "faq"
    selector = result["response_selector"]
    assert selector["all_retrieval_intents"] == ["faq"]
    response = selector["faq"]["response"]
    assert response["intent_response_key"] == "faq/ask_name"
    assert response["utter_action"] == "utter_faq/ask_name"
    assert 0.5 < response["confidence"] <= 1.0
    ranking = selector["faq"]["ranking"]
    assert {r["intent_response_key"] for r in ranking} == {"faq/ask_name", "faq/ask_weather"}
    assert ranking[0]["confidence"] == response["confidence"]
    weather = toy_model.parse("is it raining")["response_selector"]["faq"]["response"]
    assert weather["intent_response_key"] == "faq/ask_weather"


async def test_the_agents_parse_gives_the_selected_responses_variations(
    toy_model: NLUModel,
) -> None:
    """As Rasa's ResponseSelector: ``response.responses`` holds the selected response's
    variations (a custom action may read its text from the parse data)."""
    from chatbot.agent import TrainedModel
    from tests.helpers import domain_of

    domain = domain_of(
        "intents: [faq]\nresponses:\n  utter_faq/ask_name:\n  - text: I am a bot.\n"
        "  - text: Call me Bot.\n    buttons: [{title: ok, payload: /affirm}]\n"
    )
    model = TrainedModel(domain=domain, policies=[], nlu=toy_model)
    parsed = await model.parse("what is your name")
    response = parsed["response_selector"]["faq"]["response"]
    assert response["responses"] == [
        {"text": "I am a bot."},
        {"text": "Call me Bot.", "buttons": [{"title": "ok", "payload": "/affirm"}]},
    ]
    weather = (await model.parse("is it raining"))["response_selector"]["faq"]["response"]
    assert weather["responses"] == []  # the domain has no utter_faq/ask_weather


def test_export_round_trip_gives_identical_predictions(toy_model: NLUModel) -> None:
    tensors, meta = toy_model.export()
    assert all(isinstance(t, np.ndarray) for t in tensors.values())
    meta = json.loads(json.dumps(meta))  # JSON only
    tensors = load_safetensors(save_safetensors(tensors))  # and safetensors-compatible
    loaded = NLUModel.from_export(tensors, meta)
    assert loaded.settings == toy_model.settings
    for text in ["fly from Hamburg to Tokyo", "i want a small funghi", "who are you", "bye", ""]:
        assert loaded.parse(text) == toy_model.parse(text)


def test_model_file_round_trip_gives_identical_predictions(
    toy_model: NLUModel, tmp_path: Path
) -> None:
    tensors, meta = toy_model.export()
    path = tmp_path / "nlu.model"
    model_file.save(path, meta, tensors)
    assert path.read_bytes().startswith(model_file.MAGIC)  # our format: JSON + safetensors
    loaded_meta, loaded_tensors = model_file.load(path)
    loaded = NLUModel.from_export(loaded_tensors, loaded_meta)
    assert loaded.settings == toy_model.settings
    assert loaded.intents == toy_model.intents
    for text in ["fly from nyc to Tokyo", "i want a large salami", "my zip code is 12345", "hi"]:
        assert loaded.parse(text) == toy_model.parse(text)


def test_a_model_file_from_before_a_setting_existed_loads(toy_model: NLUModel) -> None:
    """Settings added later are absent from older files: such a file loads as it was trained."""
    tensors, meta = toy_model.export()
    old = json.loads(json.dumps(meta))
    del old["settings"]["intent_to_tagger"]
    del old["settings"]["tag_scheme"]
    loaded = NLUModel.from_export(tensors, old)
    assert loaded.settings == toy_model.settings
    assert not loaded.settings.intent_to_tagger
    assert loaded.settings.tag_scheme == "bilou"
    for text in ["fly from nyc to Tokyo", "i want a large salami", "hi"]:
        assert loaded.parse(text) == toy_model.parse(text)


@pytest.mark.parametrize(
    ("scheme", "tagger"),
    [
        ("bio", ComponentConfig("BiLSTMCRF", {"tag_scheme": "bio"})),
        ("io", ComponentConfig("DIETClassifier", {"BILOU_flag": False})),  # Rasa's name for it
    ],
)
def test_other_tag_schemes_learn_the_toy_data_and_round_trip(
    scheme: str, tagger: ComponentConfig, tmp_path: Path
) -> None:
    pipeline = [
        ComponentConfig("RegexFeaturizer"),
        ComponentConfig("LexicalSyntacticFeaturizer"),
        tagger,
        ComponentConfig("EntitySynonymMapper"),
    ]
    model = train_nlu(toy_data(), pipeline, seed=7, show_progress=False)
    assert model.settings.tag_scheme == scheme
    assert model.runtime.sizes.tags == 1 + {"bio": 2, "io": 1}[scheme] * 4  # 4 entity types
    for example in toy_data().examples:
        result = model.parse(example.text)
        expected = sorted(
            (a.entity, a.start, a.end, a.value, a.role, a.group) for a in example.entities
        )
        assert entities_of(result) == expected, example.text
    tensors, meta = model.export()
    model_file.save(tmp_path / "nlu.model", meta, tensors)
    loaded_meta, loaded_tensors = model_file.load(tmp_path / "nlu.model")
    loaded = NLUModel.from_export(loaded_tensors, loaded_meta)
    assert loaded.settings.tag_scheme == scheme
    for text in ["fly from Hamburg to Tokyo", "i want a small funghi and a large hawaii", "hi"]:
        assert loaded.parse(text) == model.parse(text)


def test_export_with_a_foreign_format_is_a_model_file_error(toy_model: NLUModel) -> None:
    tensors, meta = toy_model.export()
    with pytest.raises(ModelFileError, match="format"):
        NLUModel.from_export(tensors, {**meta, "format": "something-else"})
    del tensors[next(iter(tensors))]
    with pytest.raises(ModelFileError, match="do not fit"):
        NLUModel.from_export(tensors, meta)


async def test_parse_async_matches_parse(toy_model: NLUModel) -> None:
    short = "fly from Oslo to Rome"
    long = "hello " * 100
    results = await asyncio.gather(toy_model.parse_async(short), toy_model.parse_async(long))
    assert results == [toy_model.parse(short), toy_model.parse(long)]


async def test_a_long_message_is_parsed_off_the_event_loop(
    toy_model: NLUModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to INLINE_PARSE_CHARS a parse runs on the loop (less than a thread hop costs); a longer
    one in a worker thread, so a 10,000-character message never holds the loop up."""
    threads: list[int] = []
    parse = toy_model.parse_text

    def recorded(text: str) -> ParseResult:
        threads.append(threading.get_ident())
        return parse(text)

    monkeypatch.setattr(toy_model, "parse_text", recorded)
    await toy_model.parse_async("x" * INLINE_PARSE_CHARS)
    await toy_model.parse_async("x" * (INLINE_PARSE_CHARS + 1))
    await toy_model.parse_async("word " * 2000)
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread and threads[2] != loop_thread


def test_regex_entity_extractor_works_without_the_tagger() -> None:
    pipeline = [
        ComponentConfig("RegexFeaturizer"),
        ComponentConfig("DIETClassifier", {"entity_recognition": False, "epochs": 10}),
        ComponentConfig("RegexEntityExtractor"),
    ]
    model = train_nlu(toy_data(), pipeline, seed=1, show_progress=False)
    assert not model.has_tagger
    assert model.parse("my zip code is 55555")["entities"] == [
        {
            "entity": "zipcode",
            "start": 15,
            "end": 20,
            "value": "55555",
            "confidence_entity": 1.0,
            "extractor": "RegexEntityExtractor",
        }
    ]
    (berlin,) = model.parse("fly to Berlin")["entities"]
    assert (berlin["entity"], berlin["value"], berlin["extractor"]) == (
        "city",
        "Berlin",
        "RegexEntityExtractor",
    )


@functools.cache
def regexes_only_model() -> NLUModel:
    """F3's config: ``RegexEntityExtractor`` with ``use_lookup_tables: false``, no tagger."""
    pipeline = [
        ComponentConfig("RegexFeaturizer"),
        ComponentConfig("DIETClassifier", {"entity_recognition": False, "epochs": 10}),
        ComponentConfig("RegexEntityExtractor", {"use_lookup_tables": False}),
    ]
    return train_nlu(toy_data(), pipeline, seed=1, show_progress=False)


def found_by_regex(result: ParseResult) -> list[tuple[str, str, int, int]]:
    assert all(e["extractor"] == "RegexEntityExtractor" for e in result["entities"])
    return sorted((e["entity"], e["value"], e["start"], e["end"]) for e in result["entities"])


def test_regex_entity_extractor_without_lookup_tables_finds_no_lookup_entities() -> None:
    """Its own ``use_lookup_tables: false``: the features still have the lookup tables (the
    RegexFeaturizer's option), the extractor does not use them."""
    model = regexes_only_model()
    assert "city" in model.featurizer.patterns.names
    text = "fly to Berlin, zip 55555"
    assert found_by_regex(model.parse(text)) == [("zipcode", "55555", 19, 24)]


@pytest.mark.parametrize(
    ("options", "text", "found"),
    [
        ({}, "fly to Berlin, zip 55555", [("city", "Berlin", 7, 13), ("zipcode", "55555", 19, 24)]),
        ({"regex_entities_use_regexes": False}, "to Berlin, zip 55555", [("city", "Berlin", 3, 9)]),
        ({"regex_entities_case_sensitive": True}, "berlin or Paris", [("city", "Paris", 10, 15)]),
        ({}, "a Berliner", []),  # whole words only
        ({"regex_entities_use_word_boundaries": False}, "a Berliner", [("city", "Berlin", 2, 8)]),
    ],
)
def test_regex_entity_extractor_honours_its_own_options(
    options: dict[str, bool], text: str, found: list[tuple]
) -> None:
    model = with_settings(regexes_only_model(), regex_entities_use_lookup_tables=True, **options)
    assert found_by_regex(model.parse(text)) == found
    tensors, meta = model.export()
    assert found_by_regex(NLUModel.from_export(tensors, meta).parse(text)) == found


def test_a_model_file_from_before_the_extractors_options_uses_rasas_defaults() -> None:
    tensors, meta = regexes_only_model().export()
    old = json.loads(json.dumps(meta))
    for option in ("use_regexes", "use_lookup_tables", "use_word_boundaries", "case_sensitive"):
        del old["settings"][f"regex_entities_{option}"]
    del old["featurizer"]["patterns"]["word_boundaries"]
    loaded = NLUModel.from_export(tensors, old)
    assert loaded.settings.regex_entities_use_lookup_tables  # Rasa's default
    assert found_by_regex(loaded.parse("fly to Berlin, zip 55555")) == [
        ("city", "Berlin", 7, 13),
        ("zipcode", "55555", 19, 24),
    ]


def test_intent_probabilities_are_parses_at_its_share_and_mix_the_heads(
    toy_model: NLUModel,
) -> None:
    text = "hello there"
    share = toy_model.settings.ngram_intent_weight
    probs = toy_model.intent_probabilities(text, share)
    ranking = {r["name"]: r["confidence"] for r in toy_model.parse(text)["intent_ranking"]}
    for name, confidence in ranking.items():
        if name != "nlu_fallback":
            assert probs[toy_model.intents.index(name)] == pytest.approx(confidence, abs=1e-9)
    bilstm, ngrams = (toy_model.intent_probabilities(text, s) for s in (0.0, 1.0))
    assert np.allclose(probs, (1 - share) * bilstm + share * ngrams)
