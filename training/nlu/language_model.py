"""An auxiliary language-model objective for the BiLSTM encoder (Rei 2017, "Semi-supervised
multitask learning for sequence labeling").

The forward LSTM's state at each token predicts the next word (the last token: the end of the
message), the backward LSTM's the previous word (the first token: the start), each through a
small tanh layer and a softmax over the word vocabulary. Neither direction sees the word it
predicts, so the task cannot be solved by copying; it makes the encoder learn more about its
words and their contexts from the same training sentences. The heads live in the trainer only:
parsing never needs them, and the model file does not hold them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LM_DIM", "LM_MAX_WORDS", "LanguageModelHeads"]

LM_DIM = 64  # the tanh layer between an LSTM direction's state and the word softmax
# Only the most frequent words are predicted (word ids go by frequency, so those below this);
# rarer ones are not targets, as in Rei's setup: the softmax stays small on large vocabularies.
LM_MAX_WORDS = 7500
BOUNDARY = 0  # the padding id, as a target: the message's start or end
UNK = 1  # the unknown word tells nothing: never a target
IGNORE = -100


class LanguageModelHeads(nn.Module):
    def __init__(
        self, hidden: int, words: int, dim: int = LM_DIM, max_words: int = LM_MAX_WORDS
    ) -> None:
        super().__init__()
        self.hidden = hidden
        words = min(words, max_words)
        self.words = words
        self.next_word = nn.Sequential(nn.Linear(hidden, dim), nn.Tanh(), nn.Linear(dim, words))
        self.previous_word = nn.Sequential(nn.Linear(hidden, dim), nn.Tanh(), nn.Linear(dim, words))

    def loss(
        self, states: torch.Tensor, words: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The mean cross-entropy of the next-word and the previous-word predictions over the
        real tokens, summed. ``states``: the BiLSTM's (B, T, 2H [+ ...]); ``words``: the word
        ids (B, T) before any word dropout, 0 beyond each message's ``lengths``."""
        t = words.shape[1]
        h = self.hidden
        mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        following = torch.full_like(words, BOUNDARY)
        following[:, :-1] = words[:, 1:]  # beyond the last token: padding, i.e. the end
        preceding = torch.full_like(words, BOUNDARY)
        preceding[:, 1:] = words[:, :-1]
        real = states[mask]  # (N, 2H [+ ...])
        total = states.new_zeros(())
        for head, part, gold in (
            (self.next_word, real[:, :h], following[mask]),
            (self.previous_word, real[:, h : 2 * h], preceding[mask]),
        ):
            gold = gold.masked_fill((gold == UNK) | (gold >= self.words), IGNORE)
            if bool((gold != IGNORE).any()):
                total = total + nn.functional.cross_entropy(head(part), gold, ignore_index=IGNORE)
        return total
