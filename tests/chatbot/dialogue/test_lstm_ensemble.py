"""An ensemble of LSTM trackers (``ensemble_size``): the mean of their probabilities, cached per
conversation as one tracker's state is, and stored in one model file."""

from __future__ import annotations

import dataclasses
import random
import re

import numpy as np
import pytest
import torch
import yaml

from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.featurizer import StateFeaturizer
from chatbot.dialogue.lstm_policy import LSTMPolicy, batch_features, step_features
from chatbot.dialogue.lstm_runtime import EnsembleTrackerRuntime, TrackerRuntime
from chatbot.ensemble import log_mean_softmax
from chatbot.errors import ModelFileError, TrainingError
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.loader import load_project
from tests.chatbot.dialogue.test_lstm_policy import DOMAIN, make_tracker, play_turn, start
from tests.training.test_lstm_training import BOTS, small_settings
from training.dialogue import training_data
from training.lstm import settings_from_config, train_lstm

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return domain_from_dict(yaml.safe_load(DOMAIN))


def ensemble_policy(domain: Domain, **config: object) -> tuple[LSTMPolicy, list]:
    modules = [make_tracker(domain, seed=s, **config).eval() for s in SEEDS]
    runtime = EnsembleTrackerRuntime([TrackerRuntime.from_module(m) for m in modules])
    trained = torch.ones(runtime.config.num_labels, dtype=torch.bool)
    return LSTMPolicy(runtime, StateFeaturizer.build(domain), trained), modules


def reference(policy: LSTMPolicy, modules: list, conversation: Conversation) -> np.ndarray:
    """The torch trackers re-reading the whole conversation from a fresh state: the mean of
    their probabilities, renormalised over the allowed labels."""
    current = conversation.current_state()
    feats = [policy.features(s) for s in conversation.states]
    feats.append(policy.featurizer.featurize(current, conversation.latest_message))
    idx, val = batch_features([feats])
    with torch.inference_mode():
        mean = torch.stack([torch.softmax(m(idx, val)[0][0, -1], -1) for m in modules]).mean(0)
    allowed = torch.from_numpy(policy.trained.copy())
    for i in policy.featurizer.denied(current):
        allowed[i] = False
    mean = mean.double().masked_fill(~allowed, 0.0)
    return (mean / mean.sum()).numpy()


@pytest.mark.parametrize("attention", [False, True])
def test_the_runtime_gives_the_log_of_the_members_mean_probabilities(
    domain: Domain, attention: bool
) -> None:
    policy, _ = ensemble_policy(domain, attention=attention, attention_window=3)
    runtime = policy.runtime
    assert isinstance(runtime, EnsembleTrackerRuntime)
    rng = random.Random(1)
    conversation = Conversation("c", domain, start())
    for _ in range(4):
        play_turn(policy, conversation, rng)
    idx, val = step_features([policy.features(s) for s in conversation.states])
    logits, (h, c), out = runtime.forward(idx, val)
    members = [m.forward(idx, val) for m in runtime.members]
    probs = np.mean([np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True) for z, _, _ in members], axis=0)  # fmt: skip
    np.testing.assert_allclose(np.exp(logits), probs, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(h, np.concatenate([m[1][0] for m in members]))
    np.testing.assert_array_equal(c, np.concatenate([m[1][1] for m in members]))
    np.testing.assert_array_equal(out, np.concatenate([m[2] for m in members], axis=1))
    assert out.shape[1] == runtime.output_width == 3 * runtime.config.hidden_size


@pytest.mark.parametrize("attention", [False, True])
def test_incremental_predictions_equal_a_full_recompute_of_every_member(
    domain: Domain, attention: bool
) -> None:
    """The cached (h, c) and attention memory of three trackers side by side, rolled back when
    a form folds turns out of the history, give what re-reading the conversation gives."""
    policy, modules = ensemble_policy(domain, attention=attention, attention_window=4)
    rng = random.Random(3)
    conversation = Conversation("long", domain, start())
    folds = 0
    original = policy.probabilities

    def checked(conv: Conversation, excluded: frozenset = frozenset()) -> np.ndarray:
        got = original(conv, excluded)
        assert got is not None
        np.testing.assert_allclose(got, reference(policy, modules, conv), atol=1e-5)
        return got

    policy.probabilities = checked  # type: ignore[method-assign]
    for turn in range(80):
        if turn % 30 == 29:
            conversation = Conversation("long", domain, conversation.events)
        before = len(conversation.states)
        made = play_turn(policy, conversation, rng)
        folds += len(conversation.states) < before + made
    policy.probabilities = original  # type: ignore[method-assign]
    assert folds > 3
    policy.probabilities(conversation)
    assert policy.cached_states("long") == len(conversation.states)


def test_a_label_every_member_finds_very_unlikely_keeps_a_finite_score() -> None:
    """A mask may leave only such labels: their scores must still rank, not be -inf or NaN."""
    logits = np.array([[[0.0, -3000.0, -3001.0]], [[0.0, -2900.0, -3100.0]]], np.float32)
    got = log_mean_softmax(list(logits))[0]
    assert np.isfinite(got).all()
    assert got[1] > got[2]
    np.testing.assert_allclose(got[1], -2900.0 - np.log(2), rtol=1e-9)


def test_the_ensemble_round_trips_through_the_model_file(domain: Domain) -> None:
    policy, _ = ensemble_policy(domain, attention=True, attention_window=3)
    tensors, meta = policy.export()
    assert meta["ensemble_size"] == 3
    assert "model.ensemble.2.embed.weight" in tensors and "model.embed.weight" not in tensors
    loaded = LSTMPolicy.from_export(tensors, meta)
    rng = random.Random(5)
    conversation = Conversation("c", domain, start())
    for _ in range(5):
        play_turn(policy, conversation, rng)
        first, second = policy.probabilities(conversation), loaded.probabilities(conversation)
        assert first is not None and second is not None
        np.testing.assert_array_equal(first, second)
    stray = {**tensors, "model.embed.weight": tensors["model.ensemble.0.embed.weight"]}
    with pytest.raises(
        ModelFileError, match=re.escape("tensors outside every member: embed.weight")
    ):
        LSTMPolicy.from_export(stray, meta)
    short = {k: v for k, v in tensors.items() if k != "model.ensemble.1.embed_bias"}
    with pytest.raises(ModelFileError, match="embed_bias is missing"):
        LSTMPolicy.from_export(short, meta)
    with pytest.raises(ModelFileError, match="ensemble_size"):
        LSTMPolicy.from_export(tensors, {**meta, "ensemble_size": "3"})


def test_training_makes_each_member_the_tracker_of_its_seed() -> None:
    """``ensemble_size: 3`` trains the trackers that seeds 7, 8 and 9 train alone, and the
    policy predicts with their mean."""
    project = load_project(BOTS["moodbot"])
    data = training_data(project)
    settings = small_settings()
    ensemble = train_lstm(
        project.domain,
        data.stories,
        data.rules,
        dataclasses.replace(settings, ensemble_size=3),
        seed=7,
        show_progress=False,
    )
    runtime = ensemble.runtime
    assert isinstance(runtime, EnsembleTrackerRuntime) and len(runtime.members) == 3
    for member, seed in zip(runtime.members, (7, 8, 9), strict=True):
        alone = train_lstm(
            project.domain, data.stories, data.rules, settings, seed=seed,
            show_progress=False,
        )  # fmt: skip
        assert isinstance(alone.runtime, TrackerRuntime)
        assert member.weights.keys() == alone.runtime.weights.keys()
        for name, value in member.weights.items():
            np.testing.assert_array_equal(value, alone.runtime.weights[name], err_msg=name)
    first, second = (m.weights["embed.weight"] for m in runtime.members[:2])
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("size", [0, -1, 1.5, "3", True])
def test_an_ensemble_size_that_is_not_a_whole_number_of_at_least_1_is_an_error(
    size: object,
) -> None:
    with pytest.raises(TrainingError, match="ensemble_size"):
        settings_from_config(ComponentConfig("TEDPolicy", {"ensemble_size": size}))
    assert (
        settings_from_config(ComponentConfig("TEDPolicy", {"ensemble_size": 2})).ensemble_size == 2
    )
