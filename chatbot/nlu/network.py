"""The joint network: a BiLSTM over token features, shared by an intent head and a CRF tagger.

token features: word embedding | character CNN | lexical | regex/lookup      (B, T, F)
    -> BiLSTM                                                                (B, T, 2H)
    -> intent head: attention | max pooling | n-gram bag | patterns -> linear (B, intents)
       (optionally plus the mean of every token's own intent log-probabilities)
    -> tagger: linear, plus a linear map of the regex/lookup matches -> CRF   (B, T, tags)
       (optionally plus a linear map of the intent head's softmax, on every token, or of
       each token's own intent softmax)
    -> roles, groups: linear per token                                        (B, T, roles)
    -> response selector: its own attention pooling | n-gram bag -> linear    (B, responses)
message n-grams -> a linear model, mixed into the intent probabilities       (B, intents)

This module trains (torch). Serving computes the same numbers in numpy, one message at a time, from
the state dict: ``runtime.JointRuntime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from chatbot.nlu.crf import CRF
from chatbot.nlu.features import Encoded
from chatbot.nlu.settings import NetSizes, NLUSettings
from chatbot.nlu.tags import allowed_transitions, tag_names

__all__ = [
    "AttentionPool",
    "Batch",
    "JointNet",
    "NetSizes",
    "Outputs",
    "SelfAttention",
    "build_net",
    "collate",
]


class Batch(NamedTuple):
    words: torch.Tensor  # (B, T) int64, 0 = padding
    chars: torch.Tensor  # (B, T, L) int64
    lexical: torch.Tensor  # (B, T, lexical) float
    patterns: torch.Tensor  # (B, T, patterns) float
    lengths: torch.Tensor  # (B,) int64, every length >= 1
    ngrams: torch.Tensor  # (N,) int64, all messages' n-gram ids in a row
    ngram_offsets: torch.Tensor  # (B,) int64, where each message's ids start


def collate(messages: Sequence[Encoded]) -> Batch:
    """Pad encoded messages into one batch (a message with no tokens is not allowed)."""
    b = len(messages)
    if b == 1:  # the parse path: no padding, no copies
        m = messages[0]
        assert len(m.words), "a message needs at least one token"
        return Batch(
            torch.from_numpy(m.words).unsqueeze(0),
            torch.from_numpy(m.chars).unsqueeze(0),
            torch.from_numpy(m.lexical).unsqueeze(0),
            torch.from_numpy(m.patterns).unsqueeze(0),
            torch.tensor([len(m.words)]),
            torch.from_numpy(m.ngrams),
            torch.zeros(1, dtype=torch.int64),
        )
    lengths = [len(m.words) for m in messages]
    assert min(lengths) > 0, "a message needs at least one token"
    t = max(lengths)
    width = max(m.chars.shape[1] for m in messages)
    first = messages[0]
    words = np.zeros((b, t), np.int64)
    chars = np.zeros((b, t, width), np.int64)
    lexical = np.zeros((b, t, first.lexical.shape[1]), np.float32)
    patterns = np.zeros((b, t, first.patterns.shape[1]), np.float32)
    for i, m in enumerate(messages):
        n = len(m.words)
        words[i, :n] = m.words
        chars[i, :n, : m.chars.shape[1]] = m.chars
        lexical[i, :n] = m.lexical
        patterns[i, :n] = m.patterns
    offsets = np.cumsum([0] + [len(m.ngrams) for m in messages[:-1]])
    return Batch(
        torch.from_numpy(words),
        torch.from_numpy(chars),
        torch.from_numpy(lexical),
        torch.from_numpy(patterns),
        torch.tensor(lengths),
        torch.from_numpy(np.concatenate([m.ngrams for m in messages])),
        torch.from_numpy(offsets.astype(np.int64)),
    )


class TfidfParts(nn.Module):
    """The TF-IDF n-gram model's inverse document frequencies (one per n-gram) and intent biases
    (fixed while the network trains: no initial values are drawn, so the rest of the network
    starts from the same random weights as without it)."""

    def __init__(self, ngrams: int, intents: int) -> None:
        super().__init__()
        self.idf = nn.Parameter(torch.ones(ngrams), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(intents), requires_grad=False)

    def weights(self, ngrams: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Each n-gram's weight in its message: its idf, over the length of the message's idf
        vector (each message's n-gram ids are unique)."""
        idf = self.idf[ngrams]  # (N,)
        bag = torch.bucketize(torch.arange(len(ngrams)), offsets, right=True) - 1
        length = torch.zeros(len(offsets), dtype=idf.dtype).index_add_(0, bag, idf * idf).sqrt()
        return idf / length.clamp_min(1e-12)[bag]


class Outputs(NamedTuple):
    intent_logits: torch.Tensor  # (B, intents), the BiLSTM head
    ngram_logits: torch.Tensor | None  # (B, intents), the linear model of the n-grams
    emissions: torch.Tensor | None  # (B, T, tags)
    role_logits: torch.Tensor | None  # (B, T, roles)
    group_logits: torch.Tensor | None  # (B, T, groups)
    response_logits: torch.Tensor | None  # (B, responses)
    token_intent_logits: torch.Tensor | None = None  # (B, T, intents), each token's intent
    # The BiLSTM's states, after dropout: the forward LSTM's in the first ``hidden`` columns, the
    # backward one's in the next (then self-attention's, where on). For training-only heads.
    states: torch.Tensor | None = None  # (B, T, 2H [+ self-attention])


class AttentionPool(nn.Module):
    """A learned weighted average over the tokens of each message."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(states))).squeeze(2)  # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, -1e9), dim=1)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, D)


class SelfAttention(nn.Module):
    """Scaled dot-product self-attention over a message's tokens: (B, T, D) -> (B, T, dim)."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, out)
        self.key = nn.Linear(dim, out)
        self.value = nn.Linear(dim, out)
        self.scale = out**-0.5

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.bmm(self.query(states), self.key(states).transpose(1, 2)) * self.scale
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), -1e9), dim=2)  # (B, T, T)
        return torch.bmm(weights, self.value(states))


class JointNet(nn.Module):
    def __init__(
        self,
        settings: NLUSettings,
        sizes: NetSizes,
        transitions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        s = settings
        self.sizes = sizes
        self.word_emb = nn.Embedding(sizes.words, s.word_dim, padding_idx=0)
        self.char_emb = nn.Embedding(sizes.chars, s.char_dim, padding_idx=0)
        self.char_cnn = nn.Conv1d(s.char_dim, s.char_filters, kernel_size=3, padding=1)
        token_dim = s.word_dim + s.char_filters + sizes.lexical + sizes.patterns
        self.dropout = nn.Dropout(s.dropout)
        self.encoder = nn.LSTM(
            token_dim,
            s.hidden,
            num_layers=s.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=s.dropout if s.lstm_layers > 1 else 0.0,
        )
        state_dim = 2 * s.hidden
        self.self_attention = (
            SelfAttention(state_dim, s.self_attention) if s.self_attention > 0 else None
        )
        state_dim += s.self_attention
        self.ngram_bag = (
            nn.EmbeddingBag(sizes.ngrams, s.count_vectors_dim, mode="mean")
            if sizes.ngrams
            else None
        )
        bag_dim = s.count_vectors_dim if sizes.ngrams else 0
        # A logistic regression over the n-grams beside the BiLSTM head: strong on tiny data sets.
        self.ngram_intents = (
            nn.EmbeddingBag(sizes.ngrams, sizes.intents, mode="sum")
            if sizes.ngrams and s.ngram_intent_weight > 0
            else None
        )
        if self.ngram_intents is not None:
            nn.init.zeros_(self.ngram_intents.weight)
        # The TF-IDF n-gram model's inverse document frequencies and intent biases. Its weights
        # are ngram_intents'; all three are fitted after the network (training.nlu.ngram_model),
        # not by the network's loss.
        self.ngram_tfidf = (
            TfidfParts(sizes.ngrams, sizes.intents)
            if self.ngram_intents is not None and s.ngram_model == "tfidf"
            else None
        )
        if self.ngram_tfidf is not None and self.ngram_intents is not None:
            self.ngram_intents.weight.requires_grad_(False)
        self.intent_pool = AttentionPool(state_dim, s.attention_dim)
        self.intent_out = nn.Linear(2 * state_dim + bag_dim + sizes.patterns, sizes.intents)
        # Token-level intent detection (Stack-Propagation): every token predicts the message's
        # intent, trained on each token; the mean of the tokens' log-probabilities (a soft vote)
        # adds to the intent head's logits.
        self.token_intents = nn.Linear(state_dim, sizes.intents) if s.token_intent else None
        self.token_votes = s.token_intent_vote
        self.tag_out = nn.Linear(state_dim, sizes.tags) if sizes.tags else None
        # Regex and lookup matches also score tags directly: a token in the "city" lookup table
        # can be a city even where the BiLSTM has only seen other words.
        self.pattern_tags = (
            nn.Linear(sizes.patterns, sizes.tags, bias=False)
            if sizes.tags and sizes.patterns
            else None
        )
        # Stack-Propagation: the intent distribution scores tags on every token. Starts at zero,
        # so training begins from the tagger without it.
        self.intent_tags = (
            nn.Linear(sizes.intents, sizes.tags, bias=False)
            if sizes.tags and s.intent_to_tagger
            else None
        )
        if self.intent_tags is not None:
            nn.init.zeros_(self.intent_tags.weight)
        if sizes.tags:
            assert transitions is not None, "an entity tagger needs its allowed transitions"
            self.crf: CRF | None = CRF(*transitions)
        else:
            self.crf = None
        self.role_out = nn.Linear(state_dim, sizes.roles) if sizes.roles > 1 else None
        self.group_out = nn.Linear(state_dim, sizes.groups) if sizes.groups > 1 else None
        if sizes.responses:
            self.response_pool: AttentionPool | None = AttentionPool(state_dim, s.attention_dim)
            self.response_out: nn.Linear | None = nn.Linear(state_dim + bag_dim, sizes.responses)
        else:
            self.response_pool = self.response_out = None

    def char_encoding(self, chars: torch.Tensor) -> torch.Tensor:
        """A width-3 convolution over each token's characters, max-pooled: (N, L) -> (N, filters).

        Computed as a linear map of unfolded windows: the same numbers as ``self.char_cnn(x)``,
        several times faster than a convolution call on inputs this small.
        """
        x = nn.functional.pad(self.char_emb(chars), (0, 0, 1, 1))  # (N, L+2, C)
        windows = x.unfold(1, 3, 1).flatten(2)  # (N, L, C*3)
        conv = self.char_cnn
        out = nn.functional.linear(windows, conv.weight.flatten(1), conv.bias)  # (N, L, filters)
        return torch.relu(out).max(dim=1).values

    def forward(self, batch: Batch) -> Outputs:
        b, t = batch.words.shape
        mask = torch.arange(t).unsqueeze(0) < batch.lengths.unsqueeze(1)  # (B, T)
        chars = self.char_encoding(batch.chars.view(b * t, -1)).view(b, t, -1)  # (B, T, filters)
        parts = [self.word_emb(batch.words), chars]
        if batch.lexical.shape[2]:
            parts.append(batch.lexical)
        if batch.patterns.shape[2]:
            parts.append(batch.patterns)
        tokens = self.dropout(torch.cat(parts, dim=2))  # (B, T, F)
        if b == 1:
            states, _ = self.encoder(tokens)
        else:
            packed = pack_padded_sequence(
                tokens, batch.lengths, batch_first=True, enforce_sorted=False
            )
            states, _ = pad_packed_sequence(
                self.encoder(packed)[0], batch_first=True, total_length=t
            )
        if self.self_attention is not None:
            states = torch.cat([states, self.self_attention(states, mask)], dim=2)
        states = self.dropout(states)  # (B, T, 2H [+ self-attention])

        bag = (
            [self.ngram_bag(batch.ngrams, batch.ngram_offsets)]
            if self.ngram_bag is not None
            else []
        )
        pooled_max = states.masked_fill(~mask.unsqueeze(2), -1e4).max(dim=1).values
        matched = [batch.patterns.max(dim=1).values] if batch.patterns.shape[2] else []  # (B, P)
        sentence = torch.cat([self.intent_pool(states, mask), pooled_max, *bag, *matched], dim=1)
        intent_logits = self.intent_out(self.dropout(sentence))
        token_intent_logits = None
        if self.token_intents is not None:
            token_intent_logits = self.token_intents(states)  # (B, T, intents)
            if self.token_votes:  # the padding casts no vote
                votes = torch.log_softmax(token_intent_logits, dim=2).masked_fill(
                    ~mask.unsqueeze(2), 0.0
                )
                intent_logits = intent_logits + votes.sum(dim=1) / batch.lengths.unsqueeze(1)
        ngram_logits = None
        if self.ngram_tfidf is not None and self.ngram_intents is not None:
            # Fitted after the network, not by its loss: a training batch has no use for it.
            if not self.training:
                weights = self.ngram_tfidf.weights(batch.ngrams, batch.ngram_offsets)
                ngram_logits = (
                    self.ngram_intents(
                        batch.ngrams, batch.ngram_offsets, per_sample_weights=weights
                    )
                    + self.ngram_tfidf.bias
                )
        elif self.ngram_intents is not None:
            ngram_logits = self.ngram_intents(batch.ngrams, batch.ngram_offsets)
        emissions = self.tag_out(states) if self.tag_out is not None else None
        if emissions is not None and self.pattern_tags is not None:
            emissions = emissions + self.pattern_tags(batch.patterns)
        if emissions is not None and self.intent_tags is not None:
            if token_intent_logits is not None:  # each token's own intent
                emissions = emissions + self.intent_tags(torch.softmax(token_intent_logits, dim=2))
            else:
                intents = torch.softmax(intent_logits, dim=1)  # (B, intents)
                emissions = emissions + self.intent_tags(intents).unsqueeze(1)  # (B, 1, tags)
        roles = self.role_out(states) if self.role_out is not None else None
        groups = self.group_out(states) if self.group_out is not None else None
        responses = None
        if self.response_pool is not None and self.response_out is not None:
            selector = torch.cat([self.response_pool(states, mask), *bag], dim=1)
            responses = self.response_out(self.dropout(selector))
        return Outputs(
            intent_logits,
            ngram_logits,
            emissions,
            roles,
            groups,
            responses,
            token_intent_logits,
            states,
        )


def build_net(settings: NLUSettings, sizes: NetSizes, entity_types: Sequence[str]) -> JointNet:
    """A fresh network; the CRF's allowed transitions come from the entity types' tag names."""
    scheme = settings.tag_scheme
    transitions = (
        allowed_transitions(tag_names(entity_types, scheme), scheme) if sizes.tags else None
    )
    return JointNet(settings, sizes, transitions)
