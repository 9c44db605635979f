from __future__ import annotations

import dataclasses
import json

import pytest

from chatbot.errors import ConfigError
from chatbot.nlu import NLUSettings
from chatbot.nlu.settings import ABSENT_FROM_MODEL_FILE


def test_json_round_trip() -> None:
    settings = NLUSettings(hidden=64, count_vectors=(("word", 1, 2),), fallback_threshold=0.4)
    assert NLUSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


def test_every_setting_says_what_its_absence_from_a_model_file_means() -> None:
    """A new setting needs an ABSENT_FROM_MODEL_FILE entry: older model files lack it."""
    names = {f.name for f in dataclasses.fields(NLUSettings)}
    assert set(ABSENT_FROM_MODEL_FILE) == names
    NLUSettings.from_params(ABSENT_FROM_MODEL_FILE)  # every value has the setting's type


def test_a_setting_missing_from_a_model_file_keeps_the_old_meaning_not_todays_default() -> None:
    """A file written before ``intent_to_tagger`` existed stays without it, also if its default
    is ever flipped; a setting the file has is read as it is."""
    data = NLUSettings(hidden=64).to_json()
    del data["intent_to_tagger"]
    del data["ngram_intent_weight"]
    loaded = NLUSettings.from_json(data)
    assert loaded.intent_to_tagger is False
    assert loaded.ngram_intent_weight == 0.25  # not the default, -1 (chosen at training)
    assert NLUSettings().ngram_intent_weight == -1.0
    assert loaded.hidden == 64


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hiddden": 3}, "unknown setting 'hiddden'; known settings: .*hidden"),
        ({"hidden": 1.5}, "'hidden' must be int"),
        ({"synonyms": "yes"}, "'synonyms' must be bool"),
        ({"dropout": True}, "'dropout' must be float"),
        ({"count_vectors": [["word", 1]]}, "count_vectors"),
        ({"learning_rate": -0.1}, "'learning_rate' must be above 0, got -0.1"),
        ({"epochs": -5}, "'epochs' must be 0 .* or more, got -5"),
        ({"hidden": 0}, "'hidden' must be at least 1, got 0"),
        ({"dropout": 1.0}, "'dropout' must be at least 0 and under 1"),
        ({"fallback_threshold": 1.5}, "'fallback_threshold' must be between 0 and 1"),
        ({"self_attention": -1}, "'self_attention' must be 0 .* or more"),
        ({"count_vectors": [["word", 2, 1]]}, "'count_vectors' entry"),
        ({"ngram_model": "svm"}, "'ngram_model' must be one of auto, tfidf, sum, got 'svm'"),
        ({"ngram_model": 1}, "'ngram_model' must be str, got 1"),
        (
            {"ensemble_tags": "votes"},
            "'ensemble_tags' must be one of scores, marginals, got 'votes'",
        ),
        ({"ngram_l2": 0}, "'ngram_l2' must be above 0, got 0"),
        ({"count_vectors": [["bytes", 1, 2]]}, "analyzer word or char_wb"),
        # Numbers no float holds: were OverflowErrors (tracebacks)
        ({"epochs": 10**400}, "'epochs' is too large, got 1000"),
        ({"learning_rate": 10**400}, "'learning_rate' is too large for a number, got 1000"),
        ({"fallback_threshold": 10**400}, "'fallback_threshold' is too large for a number"),
    ],
)
def test_bad_params_are_config_errors(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NLUSettings.from_params(params)


def test_settings_made_directly_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="'batch_size' must be 0"):
        dataclasses.replace(NLUSettings(), batch_size=-16)
    assert NLUSettings(epochs=0, batch_size=0, ngram_intent_weight=-1.0).epochs == 0  # "choose"


def test_ints_are_accepted_for_floats() -> None:
    assert NLUSettings.from_params({"learning_rate": 1}).learning_rate == 1.0
