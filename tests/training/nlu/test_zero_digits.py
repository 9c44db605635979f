"""``zero_digits``: words looked up with every digit written 0, the characters as written."""

from __future__ import annotations

import json

from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from chatbot.nlu.features import UNK, Featurizer
from chatbot.nlu.model import NLUModel
from chatbot.nlu.settings import NLUSettings
from chatbot.nlu.tokenizer import tokenize
from chatbot.project.config import ComponentConfig
from chatbot.project.training_data import NLUData
from tests.chatbot.nlu.toy import example
from training.nlu import train_nlu
from training.nlu.pipeline import settings_from_pipeline
from training.nlu.vocab import fit_featurizer

DATA = NLUData(
    examples=[example("flight", t) for t in ("show flight [838](number)", "flight [12](number)")]
    + [example("greet", t) for t in ("hello", "hi there")]
)


def _ids(featurizer: Featurizer, text: str) -> tuple[list[int], list[list[int]]]:
    encoded = featurizer.encode(text, tokenize(text))
    return encoded.words.tolist(), encoded.chars.tolist()


def test_unseen_numbers_are_the_word_of_their_shape() -> None:
    zeroed = fit_featurizer(DATA.examples, DATA, NLUSettings(zero_digits=True))
    plain = fit_featurizer(DATA.examples, DATA, NLUSettings())
    assert "000" in zeroed.words and "838" not in zeroed.words
    assert "838" in plain.words
    seen, seen_chars = _ids(zeroed, "flight 838")
    unseen, unseen_chars = _ids(zeroed, "flight 811")
    assert seen == unseen and UNK not in unseen
    assert seen_chars != unseen_chars  # the character encoder still reads 838 and 811
    assert _ids(plain, "flight 811")[0][1] == UNK
    assert _ids(zeroed, "flight 1207")[0][1] == UNK  # another shape: unknown
    assert _ids(zeroed, "flight 99")[0][1] == zeroed.words.index("00")


def test_the_setting_travels_in_the_featurizers_json() -> None:
    zeroed = fit_featurizer(DATA.examples, DATA, NLUSettings(zero_digits=True))
    again = Featurizer.from_json(json.loads(json.dumps(zeroed.to_json())))
    assert again.zero_digits and _ids(again, "flight 811") == _ids(zeroed, "flight 811")
    older = zeroed.to_json()
    del older["zero_digits"]  # a model file from before the setting: words as written
    assert not Featurizer.from_json(older).zero_digits


def test_a_trained_model_reads_unseen_numbers_as_known_words() -> None:
    pipeline = [ComponentConfig("BiLSTMCRF", {"epochs": 30, "hidden": 32, "zero_digits": True})]
    assert settings_from_pipeline(pipeline).zero_digits
    model = train_nlu(DATA, pipeline, seed=0, show_progress=False)
    assert model.featurizer.zero_digits
    parsed = model.parse("show flight 475")
    assert parsed["intent"]["name"] == "flight"
    # Through a model file's JSON and safetensors: the same settings and the same parses.
    tensors, meta = model.export()
    loaded = NLUModel.from_export(
        load_safetensors(save_safetensors(tensors)), json.loads(json.dumps(meta))
    )
    assert loaded.settings.zero_digits and loaded.featurizer.zero_digits
    for text in ("show flight 475", "flight 9", "hello"):
        assert loaded.parse(text) == model.parse(text)
