from __future__ import annotations

import json
import logging
import re
from typing import Any

import numpy as np
import pytest
import torch

from chatbot.errors import ConfigError, TrainingError
from chatbot.nlu.features import Encoded
from chatbot.nlu.model import NLUModel
from chatbot.nlu.network import Batch, build_net, collate
from chatbot.nlu.settings import NetSizes, NLUSettings
from chatbot.project.config import ComponentConfig
from chatbot.project.training_data import LookupTable, NLUData
from tests.chatbot.nlu.toy import example
from training.nlu import train_nlu, trainer
from training.nlu.dataset import IGNORE, Targets
from training.nlu.pipeline import settings_from_pipeline
from training.nlu.trainer import _Average, for_data, schedule

FAST = [ComponentConfig("BiLSTMCRF", {"epochs": 20, "hidden": 32})]


def greetings() -> NLUData:
    return NLUData(
        examples=[example("greet", t) for t in ("hi", "hello", "hey")]
        + [example("bye", t) for t in ("bye", "goodbye", "see you")]
    )


@pytest.mark.parametrize("texts", [[], ["", "   "]])
def test_no_examples_is_a_training_error(texts: list[str]) -> None:
    data = NLUData(examples=[example("greet", t) for t in texts])
    with pytest.raises(TrainingError, match="no NLU training"):
        train_nlu(data, [], show_progress=False)


@pytest.mark.parametrize(("rate", "shown"), [(1e30, "1e+30"), (1e38, "1e+38")])
def test_a_diverging_training_stops_with_an_error_naming_the_epoch(rate: float, shown: str) -> None:
    """A learning rate far too high makes the loss NaN (1e30), or the optimiser's step too
    large for float32 (1e38): training stops with one line, instead of returning a model whose
    every confidence is NaN (the bot would never answer) or a traceback."""
    pipeline = [ComponentConfig("BiLSTMCRF", {"epochs": 20, "hidden": 32, "learning_rate": rate})]
    with pytest.raises(TrainingError) as raised:
        train_nlu(greetings(), pipeline, show_progress=False)
    assert re.fullmatch(
        r"the NLU model: the training diverged in epoch \d+ \(the loss is no longer a finite "
        r"number\): lower its learning_rate \(now " + re.escape(shown) + r"\) in config\.yml",
        str(raised.value),
    ), raised.value


def test_training_is_seeded_and_reproducible() -> None:
    texts = ["hi there", "see you", "hello you", "ciao"]
    a = train_nlu(greetings(), FAST, seed=11, show_progress=False)
    b = train_nlu(greetings(), FAST, seed=11, show_progress=False)
    c = train_nlu(greetings(), FAST, seed=12, show_progress=False)
    assert [a.parse(t) for t in texts] == [b.parse(t) for t in texts]
    assert [a.parse(t) for t in texts] != [c.parse(t) for t in texts]


def test_training_leaves_the_callers_torch_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    train_nlu(greetings(), FAST, show_progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    train_nlu(greetings(), FAST, show_progress=False)
    assert capsys.readouterr().err == ""
    train_nlu(greetings(), FAST, show_progress=True)
    assert "NLU" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "n", "expected"),
    [
        (NLUSettings(), 41, (16, 100)),  # a toy: at least 300 steps, at most 100 epochs
        (NLUSettings(), 100, (16, 43)),  # 300 steps
        (NLUSettings(), 1_000, (16, 48)),  # 3 steps an example
        (NLUSettings(), 4_478, (64, 43)),  # about 3,000 steps (ATIS)
        (NLUSettings(), 13_000, (64, 30)),  # 3,000 steps would be 15 epochs: at least min_epochs
        (NLUSettings(), 200_000, (64, 30)),
        (NLUSettings(min_epochs=10), 13_000, (64, 15)),
        (NLUSettings(epochs=7, batch_size=8), 100, (8, 7)),
        # DIETClassifier's epochs are max_epochs: the most, binding over min_epochs.
        (NLUSettings(max_epochs=100), 1_695, (16, 30)),  # chatbot init's 100: the schedule's 30
        (NLUSettings(max_epochs=3), 13_000, (64, 3)),  # a quick run
        (NLUSettings(max_epochs=100), 41, (16, 100)),
    ],
)
def test_schedule(settings: NLUSettings, n: int, expected: tuple[int, int]) -> None:
    assert schedule(settings, n) == expected


@pytest.mark.parametrize(
    ("weight", "model", "n", "intents", "expected"),
    [
        # Under 20 examples per intent: the TF-IDF n-gram model, and it leads.
        (-1.0, "auto", 30, 8, ("tfidf", 0.9)),
        (-1.0, "auto", 199, 10, ("tfidf", 0.9)),
        # From 20 per intent: the summed n-gram model, and the BiLSTM head leads.
        (-1.0, "auto", 200, 10, ("sum", 0.25)),
        (-1.0, "auto", 15_000, 150, ("sum", 0.25)),
        (-1.0, "sum", 30, 8, ("sum", 0.5)),  # asked for: it leads by less on small data
        (-1.0, "tfidf", 15_000, 150, ("tfidf", 0.25)),
        (0.4, "auto", 30, 8, ("tfidf", 0.4)),  # a share as set
        (0.0, "sum", 30, 8, ("sum", 0.0)),  # no n-gram model
    ],
)
def test_ngram_model_and_share_from_data_size(
    weight: float, model: str, n: int, intents: int, expected: tuple[str, float]
) -> None:
    settings = for_data(NLUSettings(ngram_intent_weight=weight, ngram_model=model), n, intents)
    assert (settings.ngram_model, settings.ngram_intent_weight) == expected


def test_trained_model_holds_the_chosen_share() -> None:
    with_ngrams = [ComponentConfig("CountVectorsFeaturizer"), *FAST]
    model = train_nlu(greetings(), with_ngrams, show_progress=False)  # 3 examples per intent
    assert (model.settings.ngram_model, model.settings.ngram_intent_weight) == ("tfidf", 0.9)
    assert model.runtime.ngram_intents is not None


def fruit_data() -> NLUData:
    """Fruit and vegetables in the same sentences: only the lookup tables tell them apart."""
    fruit = [
        "apple",
        "banana",
        "cherry",
        "mango",
        "peach",
        "plum",
        "grape",
        "lemon",
        "kiwi",
        "pear",
    ]
    vegetables = [
        "carrot",
        "potato",
        "onion",
        "leek",
        "celery",
        "radish",
        "turnip",
        "kale",
        "pea",
        "yam",
    ]
    templates = ["i want some {}", "add {} to the list", "do you have {}"]
    examples = []
    for i, (f, v) in enumerate(zip(fruit[:4], vegetables[:4], strict=True)):
        template = templates[i % len(templates)]
        examples.append(example("shop", template.format(f"[{f}](fruit)")))
        examples.append(example("shop", template.format(f"[{v}](vegetable)")))
    return NLUData(
        examples=examples,
        lookups=[LookupTable("fruit", tuple(fruit)), LookupTable("vegetable", tuple(vegetables))],
    )


def test_lookup_table_features_help() -> None:
    data = fruit_data()
    unseen = [("fruit", w) for w in ("peach", "plum", "grape", "lemon", "kiwi", "pear")] + [
        ("vegetable", w) for w in ("celery", "radish", "turnip", "kale", "pea", "yam")
    ]

    def accuracy(pipeline: list[ComponentConfig]) -> float:
        model = train_nlu(data, pipeline, seed=1, show_progress=False)
        hits = 0
        for kind, word in unseen:
            entities = model.parse(f"i want some {word}")["entities"]
            hits += [e["entity"] for e in entities] == [kind]
        return hits / len(unseen)

    settings = {"epochs": 40, "hidden": 32}
    with_lookups = accuracy(
        [ComponentConfig("RegexFeaturizer"), ComponentConfig("BiLSTMCRF", settings)]
    )
    without = accuracy([ComponentConfig("BiLSTMCRF", settings)])
    assert with_lookups == 1.0
    assert without <= 0.75


# Words 2-9 (0: padding, 1: unknown), 3 intents, one entity type (5 BILOU tags).
TINY_SIZES = NetSizes(
    words=10,
    chars=10,
    lexical=0,
    patterns=0,
    ngrams=0,
    intents=3,
    tags=5,
    roles=0,
    groups=0,
    responses=0,
)


@pytest.mark.parametrize("fed", [True, False])
def test_the_taggers_loss_trains_the_intent_head_when_the_intent_is_fed_to_it(fed: bool) -> None:
    settings = NLUSettings(hidden=8, word_dim=8, char_filters=8, intent_to_tagger=fed)
    net = build_net(settings, TINY_SIZES, ["city"])
    assert (net.intent_tags is not None) == fed
    if net.intent_tags is not None:
        with torch.no_grad():  # zero when training starts: no gradient through it yet
            net.intent_tags.weight.normal_()
    batch = make_batch_of_words([[2, 3, 4], [5, 6]])
    out = net(batch)
    assert out.emissions is not None and net.crf is not None
    mask = torch.arange(3).unsqueeze(0) < batch.lengths.unsqueeze(1)
    net.crf.nll(out.emissions, torch.tensor([[0, 1, 3], [4, 0, 0]]), mask).sum().backward()
    grad = net.intent_out.weight.grad
    assert (grad is not None and bool(grad.abs().sum() > 0)) == fed


def make_batch_of_words(messages: list[list[int]]) -> Batch:
    return collate(
        [
            Encoded(
                np.array(words),
                np.ones((len(words), 2), np.int64),
                np.zeros((len(words), 0), np.float32),
                np.zeros((len(words), 0), np.float32),
                np.zeros(0, np.int64),
            )
            for words in messages
        ]
    )


def test_token_intents_vote_with_the_messages_own_tokens_only() -> None:
    settings = NLUSettings(hidden=8, word_dim=8, char_filters=8, token_intent=True)
    net = build_net(settings, TINY_SIZES, ["city"]).eval()
    assert net.token_intents is not None
    with torch.no_grad():
        net.token_intents.weight.normal_(std=3.0)
        padded = net(make_batch_of_words([[2, 3, 4], [5, 6]])).intent_logits
        alone = net(make_batch_of_words([[5, 6]])).intent_logits
        torch.testing.assert_close(padded[1], alone[0])  # the padding casts no vote
        net.token_intents.weight.zero_()  # every token's vote uniform: a constant shift
        unvoted = net(make_batch_of_words([[2, 3, 4], [5, 6]])).intent_logits
    shift = padded - unvoted
    assert float((shift - shift.mean(dim=1, keepdim=True)).abs().max()) > 0.1


def test_every_token_of_a_message_is_trained_on_its_intent() -> None:
    settings = NLUSettings(hidden=8, word_dim=8, char_filters=8, token_intent=True)
    net = build_net(settings, TINY_SIZES, ["city"])
    assert net.token_intents is not None
    kept: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        output.retain_grad()
        kept.append(output)

    net.token_intents.register_forward_hook(keep)
    batch = make_batch_of_words([[2, 3, 4], [5, 6]])
    targets = Targets(
        intents=torch.tensor([0, 2]),
        tags=torch.zeros(2, 3, dtype=torch.int64),
        roles=torch.zeros(2, 3, dtype=torch.int64),
        groups=torch.zeros(2, 3, dtype=torch.int64),
        responses=torch.full((2,), IGNORE),
        response_mask=torch.ones(2, 1, dtype=torch.bool),
    )
    trainer._loss(net, batch, targets).backward()
    grad = kept[0].grad
    assert grad is not None
    assert bool((grad[1, 2] == 0).all())  # padding
    for row, length, gold in ((0, 3, 0), (1, 2, 2)):
        for position in range(length):
            # Cross-entropy pulls the gold intent's logit up on every real token.
            assert float(grad[row, position, gold]) < 0
            assert float(grad[row, position].sum().abs()) < 1e-6


def test_token_intents_learn_a_toy_set() -> None:
    config = [ComponentConfig("BiLSTMCRF", {"epochs": 40, "hidden": 32, "token_intent": True})]
    model = train_nlu(greetings(), config, seed=5, show_progress=False)
    assert model.settings.token_intent
    tensors, meta = model.export()
    assert any(name.startswith("token_intents.") for name in tensors)
    loaded = NLUModel.from_export(tensors, json.loads(json.dumps(meta)))
    for text, intent in (("hello", "greet"), ("see you", "bye"), ("hey", "greet")):
        assert model.parse(text)["intent"]["name"] == intent
        assert loaded.parse(text) == model.parse(text)


def test_label_smoothing_makes_the_intent_less_sure() -> None:
    def confidence(smoothing: float) -> float:
        params = {"epochs": 100, "hidden": 32, "label_smoothing": smoothing}  # trained to the end
        config = [ComponentConfig("BiLSTMCRF", params)]
        model = train_nlu(greetings(), config, seed=3, show_progress=False)
        return min(float(model.parse(t)["intent"]["confidence"]) for t in ("hi", "bye"))

    sure, smoothed = confidence(0.0), confidence(0.2)
    assert sure > 0.95
    assert 0.5 < smoothed < sure - 0.05


def test_weight_average_follows_the_weights_with_a_lag() -> None:
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    average = _Average(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    average.update(net)  # the first steps' decay is (1 + n) / (10 + n): 2 / 11
    assert average.shadow[0].flatten().tolist() == pytest.approx([9 / 11] * 2)
    for _ in range(200):
        average.update(net)
    average.copy_to(net)
    assert net.weight.flatten().tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_a_weight_averaged_model_learns_and_differs_from_the_last_step() -> None:
    def trained(decay: float) -> tuple[list[str], float]:
        params = {"epochs": 30, "hidden": 32, "ema_decay": decay}
        model = train_nlu(
            greetings(), [ComponentConfig("BiLSTMCRF", params)], seed=5, show_progress=False
        )
        parses = [model.parse(t)["intent"] for t in ("hi", "hello", "bye", "goodbye")]
        return [p["name"] for p in parses], float(parses[0]["confidence"])

    names, confidence = trained(0.95)
    assert names == ["greet", "greet", "bye", "bye"]
    assert confidence != trained(0.0)[1]


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_weight_average_decay_outside_0_to_1_is_a_config_error(decay: float) -> None:
    with pytest.raises(ConfigError, match="ema_decay"):
        NLUSettings.from_params({"ema_decay": decay})


def scripted_scores(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> list[dict[str, Any]]:
    """Held-out scores in the order given; the weights each was taken of, recorded."""
    seen: list[dict[str, Any]] = []

    def scorer(*_: Any) -> Any:
        def score(net: torch.nn.Module) -> float:
            seen.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            return values[len(seen) - 1]

        return score

    monkeypatch.setattr(trainer, "_scorer", scorer)
    return seen


@pytest.mark.parametrize(("checkpoint", "kept"), [(True, 1), (False, 3)])
def test_checkpoint_model_keeps_the_best_scoring_epoch(
    monkeypatch: pytest.MonkeyPatch, checkpoint: bool, kept: int
) -> None:
    seen = scripted_scores(monkeypatch, [0.5, 1.9, 0.7, 1.2])
    params = {"epochs": 4, "hidden": 16, "checkpoint_model": checkpoint}
    held_out = [example("greet", "hello there"), example("bye", "bye then")]
    kept_weights: list[dict[str, Any]] = []
    original = trainer.NLUModel

    def capture(settings: Any, labels: Any, featurizer: Any, net: Any, *rest: Any) -> Any:
        kept_weights.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return original(settings, labels, featurizer, net, *rest)

    monkeypatch.setattr(trainer, "NLUModel", capture)
    train_nlu(
        greetings(), [ComponentConfig("BiLSTMCRF", params)], eval_data=held_out, show_progress=False
    )
    assert len(seen) == 4  # every epoch scored
    final = kept_weights[-1]  # the weights the trained model was made of
    assert all(torch.equal(final[k], seen[kept][k]) for k in final)
    assert not all(torch.equal(final[k], seen[0][k]) for k in final)


def test_held_out_examples_are_not_trained_on_and_scored_every_n_epochs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = scripted_scores(monkeypatch, [1.0] * 10)
    held: list[Any] = []
    original = trainer._hold_out

    def spy(examples: Any, count: int, seed: int) -> Any:
        kept, out = original(examples, count, seed)
        held.append((kept, out))
        return kept, out

    monkeypatch.setattr(trainer, "_hold_out", spy)
    params = {
        "epochs": 5,
        "hidden": 16,
        "evaluate_on_number_of_examples": 2,
        "evaluate_every_number_of_epochs": 2,
    }
    train_nlu(greetings(), [ComponentConfig("BiLSTMCRF", params)], show_progress=False)
    ((kept, out),) = held
    assert len(out) == 2 and len(kept) == 4
    assert {e.text for e in kept}.isdisjoint(e.text for e in out)
    assert len(seen) == 3  # epochs 2, 4 and the last


def test_hold_out_takes_at_most_half_and_is_seeded() -> None:
    examples = greetings().examples
    kept, out = trainer._hold_out(list(examples), 100, seed=3)
    assert len(out) == 3 and sorted(kept + out, key=lambda e: e.text) == sorted(
        examples, key=lambda e: e.text
    )
    assert trainer._hold_out(list(examples), 2, seed=3) == trainer._hold_out(
        list(examples), 2, seed=3
    )


def test_checkpoint_model_without_held_out_examples_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    params = {"epochs": 2, "hidden": 16, "checkpoint_model": True}
    with caplog.at_level(logging.WARNING, logger="training.nlu.trainer"):
        train_nlu(greetings(), [ComponentConfig("BiLSTMCRF", params)], show_progress=False)
    assert "checkpoint_model needs held-out examples" in caplog.text


def test_diet_checkpoint_settings_are_read() -> None:
    diet = ComponentConfig(
        "DIETClassifier",
        {
            "checkpoint_model": True,
            "evaluate_on_number_of_examples": 50,
            "evaluate_every_number_of_epochs": 5,
        },
    )
    settings = settings_from_pipeline([diet])
    assert (settings.checkpoint_model, settings.evaluate_on_number_of_examples) == (True, 50)
    assert settings.evaluate_every_number_of_epochs == 5
