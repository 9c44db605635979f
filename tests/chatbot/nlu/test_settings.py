from __future__ import annotations

import json

import pytest

from chatbot.errors import ConfigError
from chatbot.nlu import NLUSettings


def test_json_round_trip() -> None:
    settings = NLUSettings(hidden=64, count_vectors=(("word", 1, 2),), fallback_threshold=0.4)
    assert NLUSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hiddden": 3}, "unknown setting 'hiddden'; known settings: .*hidden"),
        ({"hidden": 1.5}, "'hidden' must be int"),
        ({"synonyms": "yes"}, "'synonyms' must be bool"),
        ({"dropout": True}, "'dropout' must be float"),
        ({"count_vectors": [["word", 1]]}, "count_vectors"),
    ],
)
def test_bad_params_are_config_errors(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NLUSettings.from_params(params)


def test_ints_are_accepted_for_floats() -> None:
    assert NLUSettings.from_params({"learning_rate": 1}).learning_rate == 1.0
