"""The TF-IDF n-gram intent model: its fit, its place in a trained model, and older model files."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from chatbot.errors import ModelFileError
from chatbot.nlu import NLUModel
from chatbot.nlu.runtime import JointRuntime
from chatbot.project.config import ComponentConfig
from tests.chatbot.nlu.toy import toy_data, trained_toy_model
from training.nlu import train_nlu
from training.nlu.ngram_model import TfidfIntents, fit_tfidf_intents


def ids(*values: int) -> np.ndarray:
    return np.asarray(values, np.int64)


def logits(model: TfidfIntents, message: np.ndarray) -> np.ndarray:
    values = model.idf[message].astype(np.float64)
    return values / np.linalg.norm(values) @ model.weight[message] + model.bias


def probabilities(model: TfidfIntents, message: np.ndarray) -> np.ndarray:
    z = logits(model, message)
    return np.exp(z - z.max()) / np.exp(z - z.max()).sum()


def test_idf_is_scikit_learns_smooth_idf() -> None:
    """ln((1 + n) / (1 + df)) + 1: 1 for an n-gram in every message, more the rarer it is; an
    n-gram no training message has (a vocabulary entry cut elsewhere) gets the highest."""
    messages = [ids(0, 1), ids(0, 2), ids(0, 1, 3), ids(0)]
    fitted = fit_tfidf_intents(messages, [0, 1, 0, 1], ngrams=5, labels=2, l2=1e-3)
    expected = [math.log(5 / (1 + df)) + 1 for df in (4, 2, 1, 1, 0)]
    np.testing.assert_allclose(fitted.idf, expected, rtol=1e-6)


def test_the_fit_is_the_minimum_of_the_weighted_penalised_loss() -> None:
    """The gradient of the objective (class-weighted mean cross-entropy plus l2 times the squared
    weights) vanishes at the fitted weights, and moving any weight raises the objective."""
    rng = np.random.default_rng(0)
    messages = [np.unique(rng.integers(0, 30, 6)) for _ in range(40)]
    intents = [int(i) for i in rng.integers(0, 3, 40)]
    l2 = 1e-2
    fitted = fit_tfidf_intents(messages, intents, ngrams=30, labels=3, l2=l2)
    x = np.zeros((40, 30))
    for row, message in enumerate(messages):
        values = fitted.idf[message].astype(np.float64)
        x[row, message] = values / np.linalg.norm(values)
    counts = np.bincount(intents, minlength=3)
    class_weight = torch.tensor(40 / (3 * counts))

    def objective(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(
            torch.from_numpy(x) @ weight + bias, torch.tensor(intents), weight=class_weight
        )
        return loss + l2 * (weight * weight).sum()

    weight = torch.tensor(fitted.weight, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(fitted.bias, dtype=torch.float64, requires_grad=True)
    best = objective(weight, bias)
    best.backward()
    assert weight.grad is not None and bias.grad is not None
    assert float(weight.grad.abs().max()) < 1e-4
    assert float(bias.grad.abs().max()) < 1e-4
    with torch.no_grad():
        for _ in range(5):
            nudge = torch.from_numpy(rng.normal(0, 0.05, weight.shape))
            assert float(objective(weight + nudge, bias)) > float(best)


def test_every_intent_weighs_the_same_however_many_examples_it_has() -> None:
    """Nine examples of one intent, one of another: with nothing to go on (no known n-gram: the
    biases alone) the two are a toss-up, where without the class weights the frequent intent
    would have three quarters of the probability; the rare intent's own word makes it the
    rare intent."""
    messages = [ids(0, 1, 2)] * 9 + [ids(0, 1, 3)]
    fitted = fit_tfidf_intents(messages, [0] * 9 + [1], ngrams=4, labels=2, l2=1e-3)
    prior = np.exp(fitted.bias) / np.exp(fitted.bias).sum()
    np.testing.assert_allclose(prior, [0.5, 0.5], atol=0.02)
    assert probabilities(fitted, ids(0, 1, 3))[1] > 0.9


def test_the_fit_does_not_depend_on_the_random_state() -> None:
    rng = np.random.default_rng(1)
    messages = [np.unique(rng.integers(0, 50, 8)) for _ in range(30)]
    intents = [int(i) for i in rng.integers(0, 4, 30)]
    torch.manual_seed(1)
    first = fit_tfidf_intents(messages, intents, ngrams=50, labels=4, l2=1e-3)
    torch.manual_seed(2)
    second = fit_tfidf_intents(messages, intents, ngrams=50, labels=4, l2=1e-3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_intent_without_examples_never_wins() -> None:
    fitted = fit_tfidf_intents([ids(0), ids(1)], [0, 1], ngrams=3, labels=3, l2=1e-3)
    np.testing.assert_array_equal(fitted.weight[:, 2], 0.0)
    assert fitted.bias[2] < -1000
    assert np.argmax(logits(fitted, ids(2))) != 2


def test_a_trained_model_holds_the_fitted_model_and_serves_it() -> None:
    """Training fits it on the training messages' n-grams: the model's n-gram logits are the
    fit's, and what a model file holds (weights, idf, biases) parses the same after loading."""
    model = trained_toy_model()
    runtime = model.runtime
    assert isinstance(runtime, JointRuntime)
    assert model.settings.ngram_model == "tfidf"  # the toy data has a few examples per intent
    assert runtime.ngram_idf is not None and runtime.ngram_bias is not None
    assert float(runtime.ngram_idf.min()) >= 1.0  # smooth idf is at least 1
    tensors, meta = model.export()
    assert {"ngram_intents.weight", "ngram_tfidf.idf", "ngram_tfidf.bias"} <= set(tensors)
    loaded = NLUModel.from_export(tensors, json.loads(json.dumps(meta)))
    for text in ("fly from Oslo to Rome", "hi there", "bye", "zzzz"):
        assert loaded.parse(text) == model.parse(text)
        np.testing.assert_allclose(
            loaded.intent_probabilities(text, 1.0), model.intent_probabilities(text, 1.0)
        )


def test_a_file_that_says_tfidf_but_lacks_its_tensors_is_refused() -> None:
    tensors, meta = trained_toy_model().export()
    del tensors["ngram_tfidf.idf"]
    with pytest.raises(ModelFileError, match=re.escape("ngram_tfidf.idf is missing")):
        NLUModel.from_export(tensors, meta)


def test_a_model_file_from_before_the_setting_serves_the_older_ngram_model() -> None:
    """A file without ``ngram_model`` holds the older model (a sum of one row per n-gram): it
    loads and parses as it did, with no idf."""
    sum_model = [ComponentConfig("BiLSTMCRF", {"ngram_model": "sum"})]
    older = train_nlu(toy_data(), sum_model, seed=7, show_progress=False)
    tensors, meta = older.export()
    assert "ngram_tfidf.idf" not in tensors
    meta = json.loads(json.dumps(meta))
    del meta["settings"]["ngram_model"], meta["settings"]["ngram_l2"]
    loaded = NLUModel.from_export(tensors, meta)
    assert loaded.settings.ngram_model == "sum"
    assert isinstance(loaded.runtime, JointRuntime) and loaded.runtime.ngram_idf is None
    for text in ("fly from Oslo to Rome", "hi there", "bye"):
        assert loaded.parse(text) == older.parse(text)
