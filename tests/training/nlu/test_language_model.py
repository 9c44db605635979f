"""The auxiliary language-model loss (``language_model``): its targets, where its gradient goes,
and that the model file does not carry its heads."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from chatbot.errors import ConfigError
from chatbot.nlu.model import NLUModel
from chatbot.nlu.network import build_net
from chatbot.nlu.settings import NLUSettings
from chatbot.project.config import ComponentConfig
from tests.training.nlu.test_trainer import TINY_SIZES, greetings, make_batch_of_words
from training.nlu import train_nlu
from training.nlu.language_model import LanguageModelHeads

WORDS = 5  # 0 padding (the boundary as a target), 1 unknown, 2-4 words


def pointing(targets: list[list[int | None]]) -> torch.Tensor:
    """States whose values are large at the given word's column (None: anywhere but the right
    one would do; column 2 is used): with identity heads, a state points at the word it
    predicts."""
    rows = []
    for row in targets:
        rows.append(
            [nn.functional.one_hot(torch.tensor(2 if w is None else w), WORDS) for w in row]
        )
    return 50.0 * torch.stack([torch.stack(r) for r in rows]).float()


def identity_heads() -> LanguageModelHeads:
    heads = LanguageModelHeads(hidden=WORDS, words=WORDS)
    heads.next_word = nn.Identity()  # type: ignore[assignment]
    heads.previous_word = nn.Identity()  # type: ignore[assignment]
    return heads


# Message A: words 2 3 4; message B: 4, then the unknown word, then padding.
WORDS_IN = torch.tensor([[2, 3, 4], [4, 1, 0]])
LENGTHS = torch.tensor([3, 2])
# The next word at each position (0: the end); B's first token's next word is unknown.
NEXT = [[3, 4, 0], [None, 0, 3]]  # B's third position is padding: ignored whatever it says
PREVIOUS = [[0, 2, 3], [0, 4, 3]]


def test_forward_states_predict_the_next_word_backward_ones_the_previous() -> None:
    states = torch.cat([pointing(NEXT), pointing(PREVIOUS)], dim=2)
    assert float(identity_heads().loss(states, WORDS_IN, LENGTHS)) < 1e-6


@pytest.mark.parametrize(
    ("next_words", "previous_words"),
    [
        ([[2, 3, 4], [None, 1, 3]], PREVIOUS),  # forward states pointing at their own word
        (NEXT, [[2, 3, 4], [4, 1, 3]]),  # backward ones at their own
        ([[3, 4, 3], [None, 0, 3]], PREVIOUS),  # no end of message after the last word
        (NEXT, [[4, 2, 3], [0, 4, 3]]),  # no start before the first
        (NEXT, [[0, 2, 3], [0, 3, 3]]),  # the second message's previous word wrong
    ],
)
def test_any_other_target_costs(
    next_words: list[list[int | None]], previous_words: list[list[int | None]]
) -> None:
    states = torch.cat([pointing(next_words), pointing(previous_words)], dim=2)
    assert float(identity_heads().loss(states, WORDS_IN, LENGTHS)) > 1.0


def test_the_language_model_trains_the_encoder_and_not_the_heads_on_top() -> None:
    settings = NLUSettings(hidden=8, word_dim=8, char_filters=8)
    net = build_net(settings, TINY_SIZES, ["city"])
    heads = LanguageModelHeads(settings.hidden, TINY_SIZES.words)
    batch = make_batch_of_words([[2, 3, 4], [5, 6]])
    out = net(batch)
    assert out.states is not None
    heads.loss(out.states, batch.words, batch.lengths).backward()
    for name in ("encoder.weight_ih_l0", "encoder.weight_ih_l0_reverse", "word_emb.weight"):
        grad = net.get_parameter(name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    assert net.intent_out.weight.grad is None
    assert net.tag_out is not None and net.tag_out.weight.grad is None


def test_a_model_trained_with_it_learns_and_its_file_has_no_language_model() -> None:
    def trained(weight: float) -> NLUModel:
        params = {"epochs": 40, "hidden": 32, "language_model": weight}
        return train_nlu(
            greetings(), [ComponentConfig("BiLSTMCRF", params)], seed=5, show_progress=False
        )

    model, plain = trained(0.5), trained(0.0)
    tensors, meta = model.export()
    assert sorted(tensors) == sorted(plain.export()[0])  # the same tensors, no language model
    loaded = NLUModel.from_export(tensors, json.loads(json.dumps(meta)))
    assert loaded.settings.language_model == 0.5
    for text, intent in (("hello", "greet"), ("see you", "bye"), ("hey", "greet")):
        assert model.parse(text)["intent"]["name"] == intent
        assert loaded.parse(text) == model.parse(text)
    # The auxiliary loss changed the training: the same seed gives other weights.
    assert model.parse("hi")["intent"]["confidence"] != plain.parse("hi")["intent"]["confidence"]


@pytest.mark.parametrize("weight", [-0.1, "much"])
def test_a_negative_or_non_number_weight_is_a_config_error(weight: object) -> None:
    with pytest.raises(ConfigError, match="language_model"):
        NLUSettings.from_params({"language_model": weight})


def test_words_beyond_the_predicted_vocabulary_are_not_targets() -> None:
    heads = LanguageModelHeads(hidden=4, words=WORDS, max_words=4)  # word 4 is too rare
    assert heads.words == 4
    heads.next_word = nn.Identity()  # type: ignore[assignment]
    heads.previous_word = nn.Identity()  # type: ignore[assignment]
    # Message A: 2 3 4, whose word 4 (the next word at position 1) is not predicted: any state
    # there costs nothing. Message B: 3, then the unknown word.
    words = torch.tensor([[2, 3, 4], [3, 1, 0]])
    previous = pointing([[0, 2, 3], [0, 3, 3]])[..., :4]
    right = torch.cat([pointing([[3, 2, 0], [None, 0, 3]])[..., :4], previous], dim=2)
    assert float(heads.loss(right, words, LENGTHS)) < 1e-6
    wrong = torch.cat([pointing([[2, 2, 0], [None, 0, 3]])[..., :4], previous], dim=2)
    assert float(heads.loss(wrong, words, LENGTHS)) > 1.0
