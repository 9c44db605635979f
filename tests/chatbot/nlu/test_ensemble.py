"""``ensemble_size``: several networks trained with consecutive seeds, parsed as one."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatbot import model_file
from chatbot.agent import TrainedModel
from chatbot.errors import ConfigError, ModelFileError
from chatbot.nlu import NLUModel
from chatbot.nlu.crf_decoder import MeanMarginalsDecoder
from chatbot.nlu.features import Encoded
from chatbot.nlu.runtime import EnsembleRuntime, JointRuntime
from chatbot.nlu.tokenizer import tokenize
from chatbot.project.config import ComponentConfig
from chatbot.project.loader import load_project
from tests.chatbot.nlu.test_model import entities_of
from tests.chatbot.nlu.toy import toy_data, trained_toy_model
from tests.helpers import DOMAINS
from training.nlu import train_nlu
from training.train import train_to_file

SEED = 7  # the toy model's
TEXTS = ["fly from Hamburg to Tokyo", "i want a small funghi", "who are you", "bye", "hmm"]


def pipeline(**settings: object) -> list[ComponentConfig]:
    return [
        ComponentConfig("WhitespaceTokenizer", {}),
        ComponentConfig("RegexFeaturizer", {}),
        ComponentConfig("LexicalSyntacticFeaturizer", {}),
        ComponentConfig("CountVectorsFeaturizer", {}),
        ComponentConfig("BiLSTMCRF", {"epochs": 40, **settings}),
        ComponentConfig("EntitySynonymMapper", {}),
    ]


@pytest.fixture(scope="module")
def ensemble() -> NLUModel:
    return train_nlu(toy_data(), pipeline(ensemble_size=3), seed=SEED, show_progress=False)


@pytest.fixture(scope="module")
def singles() -> list[NLUModel]:
    """One network each, trained with the ensemble's seeds."""
    return [
        train_nlu(toy_data(), pipeline(), seed=s, show_progress=False)
        for s in range(SEED, SEED + 3)
    ]


def _encoded(model: NLUModel, text: str) -> Encoded:
    tokens = tokenize(text)
    return model.featurizer.encode(text, tokens, model.featurizer.patterns.matches(text, tokens))


def test_members_are_the_networks_of_consecutive_seeds(
    ensemble: NLUModel, singles: list[NLUModel]
) -> None:
    runtime = ensemble.runtime
    assert isinstance(runtime, EnsembleRuntime) and len(runtime.members) == 3
    for member, single in zip(runtime.members, singles, strict=True):
        assert isinstance(single.runtime, JointRuntime)
        assert member.weights.keys() == single.runtime.weights.keys()
        for name, value in member.weights.items():
            assert np.array_equal(value, single.runtime.weights[name]), name
    # Different seeds, different networks: the average is not one network three times.
    first, second = (m.weights["intent_out.weight"] for m in runtime.members[:2])
    assert not np.allclose(first, second)


def test_probabilities_are_the_members_mean_and_tags_use_their_mean_scores(
    ensemble: NLUModel, singles: list[NLUModel]
) -> None:
    share = ensemble.settings.ngram_intent_weight
    assert all(s.settings.ngram_intent_weight == share for s in singles)
    for text in TEXTS:
        expected = np.mean([s.intent_probabilities(text, share) for s in singles], axis=0)
        got = ensemble.intent_probabilities(text, share)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)  # float32 sums
        ranking = ensemble.parse(text)["intent_ranking"]
        assert ranking[0]["confidence"] == pytest.approx(float(expected.max()))
        out = ensemble.runtime(_encoded(ensemble, text))
        members = [s.runtime(_encoded(s, text)) for s in singles]
        assert out.emissions is not None
        np.testing.assert_allclose(out.emissions, np.mean([m.emissions for m in members], axis=0))
        roles = np.exp(out.role_logits)  # type: ignore[arg-type]
        np.testing.assert_allclose(roles.sum(axis=-1), 1.0)
    decoder = ensemble.runtime.decoder
    assert decoder is not None
    for part in ("trans", "start", "end"):
        mean = np.mean([getattr(s.runtime.decoder, part) for s in singles], axis=0)
        np.testing.assert_allclose(getattr(decoder, part), mean)


def test_an_ensemble_learns_the_toy_data(ensemble: NLUModel) -> None:
    for ex in toy_data().examples:
        result = ensemble.parse(ex.text)
        assert result["intent"]["name"] == ex.base_intent, ex.text
        gold = sorted((e.entity, e.start, e.end, e.value, e.role, e.group) for e in ex.entities)
        assert entities_of(result) == gold, ex.text
        if ex.intent != ex.base_intent:  # a retrieval intent: the response selector's key
            selector: Any = result["response_selector"][ex.base_intent]
            assert selector["response"]["intent_response_key"] == ex.intent


def test_an_ensemble_round_trips_through_a_model_file(ensemble: NLUModel, tmp_path: Path) -> None:
    tensors, meta = ensemble.export()
    assert all(name.startswith(("ensemble.0.", "ensemble.1.", "ensemble.2.")) for name in tensors)
    path = tmp_path / "nlu.model"
    model_file.save(path, json.loads(json.dumps(meta)), tensors)
    loaded_meta, loaded_tensors = model_file.load(path)
    loaded = NLUModel.from_export(loaded_tensors, loaded_meta)
    assert loaded.settings.ensemble_size == 3
    for text in [*TEXTS, ""]:
        assert loaded.parse(text) == ensemble.parse(text)


def test_tags_from_the_members_mean_marginals_learn_the_toy_data_and_round_trip(
    ensemble: NLUModel, tmp_path: Path
) -> None:
    """``ensemble_tags: marginals``: each member's CRF decodes its own emissions, and the tags
    are the allowed path of the members' mean marginals; the model file keeps the choice."""
    assert isinstance(ensemble.runtime, EnsembleRuntime)
    settings = replace(ensemble.settings, ensemble_tags="marginals")
    runtime = EnsembleRuntime(ensemble.runtime.members, settings)
    assert isinstance(runtime.decoder, MeanMarginalsDecoder)
    model = NLUModel(settings, ensemble.labels, ensemble.featurizer, runtime, ensemble.synonyms)
    for ex in toy_data().examples:
        gold = sorted((e.entity, e.start, e.end, e.value, e.role, e.group) for e in ex.entities)
        assert entities_of(model.parse(ex.text)) == gold, ex.text
    # An entity's confidence: its tokens' mean of the members' mean marginals of its tags.
    text = "fly from Hamburg to Tokyo"
    emissions = np.stack([m(_encoded(ensemble, text)).emissions for m in runtime.members])  # type: ignore[misc]
    path, marginals = runtime.decoder.decode(emissions)
    hamburg = next(e for e in model.parse(text)["entities"] if e["value"] == "Hamburg")
    assert hamburg["confidence_entity"] == pytest.approx(float(marginals[2, path[2]]))
    tensors, meta = model.export()
    file = tmp_path / "nlu.model"
    model_file.save(file, json.loads(json.dumps(meta)), tensors)
    loaded_meta, loaded_tensors = model_file.load(file)
    loaded = NLUModel.from_export(loaded_tensors, loaded_meta)
    assert loaded.settings.ensemble_tags == "marginals"
    assert isinstance(loaded.runtime.decoder, MeanMarginalsDecoder)
    for text in TEXTS:
        assert loaded.parse(text) == model.parse(text)


def test_a_model_file_short_of_a_member_or_with_a_stray_tensor_is_refused(
    ensemble: NLUModel,
) -> None:
    tensors, meta = ensemble.export()
    short = {k: v for k, v in tensors.items() if not k.startswith("ensemble.2.")}
    with pytest.raises(ModelFileError, match=re.escape("crf.transitions is missing")):
        NLUModel.from_export(short, meta)
    stray = {**tensors, "intent_out.weight": tensors["ensemble.0.intent_out.weight"]}
    with pytest.raises(ModelFileError, match=re.escape("outside every member: intent_out.weight")):
        NLUModel.from_export(stray, meta)
    beyond = {**tensors, "ensemble.3.intent_out.weight": tensors["ensemble.0.intent_out.weight"]}
    with pytest.raises(ModelFileError, match=re.escape("ensemble.3.intent_out.weight")):
        NLUModel.from_export(beyond, meta)


def test_a_single_networks_file_loads_as_one_network() -> None:
    """Files written before the setting existed hold one network's tensors, unprefixed."""
    tensors, meta = trained_toy_model().export()
    old = json.loads(json.dumps(meta))
    del old["settings"]["ensemble_size"]
    loaded = NLUModel.from_export(tensors, old)
    assert isinstance(loaded.runtime, JointRuntime)
    assert loaded.parse("fly from Oslo to Rome") == trained_toy_model().parse(
        "fly from Oslo to Rome"
    )


@pytest.mark.parametrize("size", [0, -1, 1.5, "3"])
def test_an_ensemble_size_below_1_or_not_a_whole_number_is_a_config_error(size: object) -> None:
    with pytest.raises(ConfigError, match="ensemble_size"):
        train_nlu(toy_data(), [ComponentConfig("BiLSTMCRF", {"ensemble_size": size})])


def test_members_parse_as_the_single_models_of_their_seeds(
    ensemble: NLUModel, singles: list[NLUModel]
) -> None:
    members = ensemble.members()
    assert [m.settings.ensemble_size for m in members] == [1, 1, 1]
    for member, single in zip(members, singles, strict=True):
        for text in TEXTS:
            assert member.parse(text) == single.parse(text)
    assert singles[0].members() == [singles[0]]


def test_a_projects_model_file_holds_and_serves_the_ensemble(tmp_path: Path) -> None:
    """``ensemble_size`` in config.yml: ``chatbot train``'s model file serves the ensemble."""
    project = tmp_path / "moodbot"
    shutil.copytree(DOMAINS / "moodbot", project)
    config = project / "config.yml"
    text = config.read_text()
    diet = "  - name: DIETClassifier\n    epochs: 100\n    constrain_similarities: true\n"
    assert diet in text
    config.write_text(
        text.replace(diet, "  - name: BiLSTMCRF\n    epochs: 30\n    ensemble_size: 2\n")
    )
    out = tmp_path / "mood.model"
    train_to_file(load_project(project), out, show_progress=False)
    served = TrainedModel.from_file(out)
    assert isinstance(served.nlu, NLUModel)
    assert isinstance(served.nlu.runtime, EnsembleRuntime)
    assert len(served.nlu.runtime.members) == 2
    assert served.nlu.parse("I am very sad today")["intent"]["name"] == "mood_unhappy"
