"""The numpy runtime that serves the NLU model equals the torch ``JointNet`` that training fits.

On random weights (every head switched on and off, one and two LSTM layers, the intent fed to the
tagger or not) the runtime's outputs equal the network's in eval mode for one message; on the
trained toy model (and one with the intent fed to the tagger), ``parse`` through the runtime
equals ``parse`` through the torch network; and a model file loads and parses in a process
that never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from chatbot import model_file
from chatbot.errors import ModelFileError
from chatbot.nlu import NLUModel
from chatbot.nlu.features import Encoded
from chatbot.nlu.network import JointNet, build_net, collate
from chatbot.nlu.runtime import JointRuntime, MessageOutputs, state_shapes
from chatbot.nlu.settings import NetSizes, NLUSettings
from chatbot.nlu.tags import allowed_transitions, tag_names
from chatbot.project.config import ComponentConfig
from tests.chatbot.nlu.toy import toy_data
from tests.helpers import ROOT
from training.nlu import train_nlu

# float32 throughout, summed in other orders: outputs agree to this share of their largest value
# (absolutely, where that is below 1). Seen: 2e-6 at most, over these configurations and more seeds.
TOLERANCE = 1e-5

SMALL = NLUSettings(
    word_dim=12,
    char_dim=6,
    char_filters=10,
    hidden=16,
    attention_dim=8,
    count_vectors_dim=7,
    ngram_intent_weight=0.25,  # the defaults ("auto", negative) are resolved by training
    ngram_model="tfidf",
)
ENTITY_TYPES = ("city", "date")
FULL = NetSizes(
    words=40,
    chars=30,
    lexical=10,
    patterns=3,
    ngrams=50,
    intents=6,
    tags=1 + 4 * len(ENTITY_TYPES),
    roles=3,
    groups=2,
    responses=4,
)
CONFIGS = {
    "everything": (SMALL, FULL),
    "two layers": (dataclasses.replace(SMALL, lstm_layers=2), FULL),
    "default sizes": (
        NLUSettings(lstm_layers=2, ngram_intent_weight=0.25, ngram_model="tfidf"),
        dataclasses.replace(FULL, words=300, ngrams=500),
    ),
    "intents only": (SMALL, dataclasses.replace(FULL, tags=0, roles=0, groups=0, responses=0)),
    "no patterns, no lexical": (SMALL, dataclasses.replace(FULL, patterns=0, lexical=0)),
    "no n-grams": (SMALL, dataclasses.replace(FULL, ngrams=0)),
    "no n-gram intents": (dataclasses.replace(SMALL, ngram_intent_weight=0.0), FULL),
    "older n-gram model (a sum of rows)": (dataclasses.replace(SMALL, ngram_model="sum"), FULL),
    "groups, no roles": (SMALL, dataclasses.replace(FULL, roles=1, responses=0)),
    "intent to tagger": (dataclasses.replace(SMALL, intent_to_tagger=True), FULL),
    "intent to tagger, no patterns": (
        dataclasses.replace(SMALL, intent_to_tagger=True, lstm_layers=2),
        dataclasses.replace(FULL, patterns=0, lexical=0, ngrams=0),
    ),
    "intent to tagger, intents only": (
        dataclasses.replace(SMALL, intent_to_tagger=True),
        dataclasses.replace(FULL, tags=0, roles=0, groups=0, responses=0),
    ),
    "self-attention": (dataclasses.replace(SMALL, self_attention=8), FULL),
    "token intents": (dataclasses.replace(SMALL, token_intent=True), FULL),
    "token intents to the tagger, two layers": (
        dataclasses.replace(SMALL, token_intent=True, intent_to_tagger=True, lstm_layers=2),
        dataclasses.replace(FULL, patterns=0),
    ),
    "token intents without a vote, to the tagger": (
        dataclasses.replace(
            SMALL, token_intent=True, token_intent_vote=False, intent_to_tagger=True
        ),
        FULL,
    ),
    "token intents, intents only": (
        dataclasses.replace(SMALL, token_intent=True, intent_to_tagger=True),
        dataclasses.replace(FULL, tags=0, roles=0, groups=0, responses=0),
    ),
    "self-attention, two layers, intent to tagger": (
        dataclasses.replace(SMALL, self_attention=5, lstm_layers=2, intent_to_tagger=True),
        dataclasses.replace(FULL, patterns=0),
    ),
}


def random_net(settings: NLUSettings, sizes: NetSizes, seed: int = 0) -> JointNet:
    """Every weight random, the padding rows of the embeddings too (nothing relies on zeros):
    normal, of standard deviation 2 / sqrt(fan-in), so pre-activations are of order 1 to a few,
    as in a trained network, at every size."""
    net = build_net(settings, sizes, ENTITY_TYPES[: (sizes.tags - 1) // 4])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            fan_in = math.prod(parameter.shape[1:]) if parameter.dim() > 1 else 4
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(noise * 2 / math.sqrt(fan_in))
    return net.eval()


def random_message(sizes: NetSizes, length: int, rng: np.random.Generator) -> Encoded:
    width = int(rng.integers(1, 8))
    chars = rng.integers(1, sizes.chars, (length, width))
    for i, n in enumerate(rng.integers(1, width + 1, length)):
        chars[i, n:] = 0  # shorter tokens are padded
    count = int(rng.integers(0, 12)) if sizes.ngrams else 0
    return Encoded(
        rng.integers(0, sizes.words, length),
        chars,
        rng.integers(0, 2, (length, sizes.lexical)).astype(np.float32),
        (rng.random((length, sizes.patterns)) < 0.3).astype(np.float32),
        np.unique(rng.integers(0, max(sizes.ngrams, 1), count)),  # sorted, may be empty
    )


def torch_outputs(net: JointNet, message: Encoded) -> MessageOutputs:
    """``JointNet.forward`` on the parse path (a batch of one), as numpy."""
    with torch.inference_mode():
        out = net(collate([message]))

    def first(x: torch.Tensor | None) -> np.ndarray | None:
        return None if x is None else x[0].numpy()

    return MessageOutputs(
        out.intent_logits[0].numpy(),
        first(out.ngram_logits),
        None if out.emissions is None else out.emissions[0].double().numpy(),
        first(out.role_logits),
        first(out.group_logits),
        first(out.response_logits),
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_the_runtime_computes_what_the_network_computes(config: str) -> None:
    settings, sizes = CONFIGS[config]
    net = random_net(settings, sizes)
    runtime = JointRuntime.from_net(net, settings)
    rng = np.random.default_rng(1)
    for length in (1, 2, 8, 60):
        message = random_message(sizes, length, rng)
        expected, got = torch_outputs(net, message), runtime(message)
        for name, want, have in zip(MessageOutputs._fields, expected, got, strict=True):
            if want is None:
                assert have is None, name
                continue
            assert have is not None, name
            assert have.shape == want.shape, name
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(
                have, want, rtol=0, atol=TOLERANCE * scale, err_msg=f"{name}, {length} tokens"
            )


@pytest.mark.parametrize("config", ["everything", "self-attention, two layers, intent to tagger"])
def test_a_padded_batch_gives_each_message_what_it_gets_alone(config: str) -> None:
    """Training's batches pad messages to the longest: padding must not reach a message's
    outputs (the BiLSTM's packing, the pooling masks, the self-attention's key mask)."""
    settings, sizes = CONFIGS[config]
    net = random_net(settings, sizes, seed=4)
    rng = np.random.default_rng(5)
    messages = [random_message(sizes, length, rng) for length in (3, 9, 1, 6)]
    for message in messages:  # one character width: a token's character maximum spans the width
        message.chars = np.pad(message.chars, ((0, 0), (0, 8 - message.chars.shape[1])))
    with torch.inference_mode():
        batched = net(collate(messages))
    for i, message in enumerate(messages):
        alone, n = torch_outputs(net, message), len(message.words)
        np.testing.assert_allclose(batched.intent_logits[i].numpy(), alone.intent_logits, atol=1e-4)
        assert batched.ngram_logits is not None and alone.ngram_logits is not None
        np.testing.assert_allclose(batched.ngram_logits[i].numpy(), alone.ngram_logits, atol=1e-4)
        assert batched.emissions is not None and alone.emissions is not None
        np.testing.assert_allclose(batched.emissions[i, :n].numpy(), alone.emissions, atol=1e-4)


@pytest.mark.parametrize(
    ("config", "in_training"),
    [("everything", False), ("older n-gram model (a sum of rows)", True)],
)
def test_training_batches_compute_only_the_ngram_logits_the_loss_uses(
    config: str, in_training: bool
) -> None:
    """The TF-IDF model is fitted after the network, so a training batch skips it; the summed
    model is trained by the loss, so a training batch has it. Evaluation has either."""
    settings, sizes = CONFIGS[config]
    net = random_net(settings, sizes)
    batch = collate([random_message(sizes, 4, np.random.default_rng(0))])
    assert (net.train()(batch).ngram_logits is not None) == in_training
    assert net.eval()(batch).ngram_logits is not None


@pytest.mark.parametrize("config", ["everything", "older n-gram model (a sum of rows)"])
def test_empty_ngram_bags_are_as_in_torch(config: str) -> None:
    """No known n-gram: the TF-IDF model gives its biases, the older one zeros."""
    settings, sizes = CONFIGS[config]
    net = random_net(settings, sizes, seed=2)
    message = random_message(sizes, 3, np.random.default_rng(3))
    message.ngrams = np.zeros(0, np.int64)
    got, want = JointRuntime.from_net(net, settings)(message), torch_outputs(net, message)
    assert got.ngram_logits is not None and want.ngram_logits is not None
    if settings.ngram_model == "tfidf":
        assert net.ngram_tfidf is not None
        np.testing.assert_array_equal(got.ngram_logits, net.ngram_tfidf.bias.detach().numpy())
    else:
        np.testing.assert_array_equal(got.ngram_logits, 0.0)
    np.testing.assert_allclose(got.ngram_logits, want.ngram_logits, atol=1e-5)
    np.testing.assert_allclose(got.intent_logits, want.intent_logits, atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS)
def test_state_shapes_are_the_networks(config: str) -> None:
    settings, sizes = CONFIGS[config]
    state = build_net(settings, sizes, ENTITY_TYPES[: (sizes.tags - 1) // 4]).state_dict()
    assert list(state_shapes(settings, sizes).items()) == [
        (k, tuple(v.shape)) for k, v in state.items()
    ]


def test_the_decoder_is_the_crfs() -> None:
    settings, sizes = CONFIGS["everything"]
    net = random_net(settings, sizes)
    assert net.crf is not None
    expected = net.crf.decoder()
    decoder = JointRuntime.from_net(net, settings).decoder
    assert decoder is not None
    for name in ("trans", "start", "end"):
        np.testing.assert_array_equal(getattr(decoder, name), getattr(expected, name))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.pop("tag_out.bias"), "tag_out.bias is missing"),
        (lambda w: w.update(extra=np.zeros(3, np.float32)), "extra is not a tensor"),
        (
            lambda w: w.update({"encoder.weight_hh_l0": np.zeros((64, 15), np.float32)}),
            r"encoder.weight_hh_l0 is \(64, 15\), the settings say \(64, 16\)",
        ),
    ],
)
def test_weights_that_do_not_fit_are_a_model_file_error(change: Any, message: str) -> None:
    settings, sizes = CONFIGS["everything"]
    net = random_net(settings, sizes)
    weights = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    change(weights)
    with pytest.raises(ModelFileError, match=message):
        JointRuntime(weights, settings, sizes, allowed_transitions(tag_names(ENTITY_TYPES)))


# ------------------------------------------------------------------------ the trained toy model


class TorchForward:
    """A stand-in for ``NLUModel.runtime`` that runs the torch network instead."""

    def __init__(self, net: JointNet) -> None:
        self.net = net

    def __call__(self, message: Encoded) -> MessageOutputs:
        return torch_outputs(self.net, message)


def torch_model(model: NLUModel) -> NLUModel:
    """The same model parsing through the torch network (its weights loaded from ``export``)."""
    tensors, _ = model.export()
    net = build_net(model.settings, model.runtime.sizes, model.labels.entity_types)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    reference = NLUModel(model.settings, model.labels, model.featurizer, model.runtime)
    reference.synonyms = model.synonyms
    reference.runtime = TorchForward(net.eval())  # type: ignore[assignment]
    assert net.crf is not None
    reference._decoder = net.crf.decoder()
    return reference


def assert_same_parse(got: Any, want: Any) -> None:
    assert got["text"] == want["text"]
    assert got["intent"]["name"] == want["intent"]["name"]
    assert got["intent"]["confidence"] == pytest.approx(want["intent"]["confidence"], abs=1e-5)
    assert [r["name"] for r in got["intent_ranking"]] == [r["name"] for r in want["intent_ranking"]]
    for mine, theirs in zip(got["intent_ranking"], want["intent_ranking"], strict=True):
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5)
    assert len(got["entities"]) == len(want["entities"])
    for mine, theirs in zip(got["entities"], want["entities"], strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if key.startswith("confidence"):
                assert mine[key] == pytest.approx(value, abs=1e-5), key
            else:
                assert mine[key] == value, key
    assert ("response_selector" in got) == ("response_selector" in want)
    if "response_selector" in want:
        for intent, chosen in want["response_selector"].items():
            if intent == "all_retrieval_intents":
                assert got["response_selector"][intent] == chosen
                continue
            mine = got["response_selector"][intent]
            assert [r["intent_response_key"] for r in mine["ranking"]] == [
                r["intent_response_key"] for r in chosen["ranking"]
            ]
            assert mine["response"]["confidence"] == pytest.approx(
                chosen["response"]["confidence"], abs=1e-5
            )


TEXTS = [
    *(e.text for e in toy_data().examples),
    "fly from Hamburg to Tokyo",
    "fly from nyc to berlin",
    "i want a small funghi and a large salami",
    "my zip code is 55555",
    "x",
    "asdf qwer zxcv",
    "Привет, как дела?",
    ("fly from Berlin to Paris and then " * 40).strip(),
]


def test_parse_equals_the_torch_networks_parse(toy_model: NLUModel) -> None:
    reference = torch_model(toy_model)
    for text in TEXTS:
        assert_same_parse(toy_model.parse(text), reference.parse(text))


def test_parse_with_the_intent_fed_to_the_tagger_equals_the_torch_networks_parse() -> None:
    pipeline = [
        ComponentConfig("RegexFeaturizer"),
        ComponentConfig("LexicalSyntacticFeaturizer"),
        ComponentConfig("CountVectorsFeaturizer"),
        ComponentConfig("BiLSTMCRF", {"intent_to_tagger": True, "epochs": 20}),
        ComponentConfig("EntitySynonymMapper"),
    ]
    model = train_nlu(toy_data(), pipeline, seed=7, show_progress=False)
    assert model.runtime.intent_tags is not None
    assert np.abs(model.runtime.intent_tags.weight).max() > 0  # trained away from its zeros
    reference = torch_model(model)
    for text in TEXTS:
        assert_same_parse(model.parse(text), reference.parse(text))


SERVE = """
import json, sys
from pathlib import Path
from chatbot import model_file
from chatbot.nlu import NLUModel
import chatbot.nlu.features, chatbot.nlu.lookup_extractor, chatbot.nlu.patterns
import chatbot.nlu.tokenizer
meta, tensors = model_file.loads(Path(sys.argv[1]).read_bytes())
model = NLUModel.from_export(tensors, meta)
result = model.parse(sys.argv[2])
assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]
print(json.dumps(result))
"""


def test_a_model_file_loads_and_parses_without_torch(toy_model: NLUModel, tmp_path: Path) -> None:
    tensors, meta = toy_model.export()
    path = tmp_path / "nlu.model"
    path.write_bytes(model_file.dumps(meta, tensors))
    text = "fly from nyc to Tokyo"
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(path), text],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert_same_parse(json.loads(result.stdout), toy_model.parse(text))
