"""The LSTM dialog-state tracker: a recurrent network over the states of a conversation.

    sparse state features --(input layer)--> x_t --(LSTM)--> h_t --(attention, optional)--> z_t
    z_t --(policy head)--> one score per label --(mask, softmax)--> next action

The LSTM's hidden state after step t *is* the dialog state: predicting the next action costs one
LSTM step from the previous (h, c). Settings live in ``TrackerConfig``, which is saved in the model
file and read back from it (like nanoGPT's ``GPTConfig``).

Shapes: B conversations, T steps, K features per step (padded), A labels, H hidden size.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from chatbot.dialogue.lstm_runtime import TrackerConfig

__all__ = ["STEPWISE_MAX", "DialogueStateTracker", "LSTMState", "TrackerConfig", "masked_log_probs"]

# (h, c) of the LSTM, each (num_layers, B, H)
LSTMState = tuple[torch.Tensor, torch.Tensor]
# At prediction time, up to this many steps run one by one (see ``lstm_step``).
STEPWISE_MAX = 64


class DialogueStateTracker(nn.Module):
    def __init__(self, config: TrackerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.num_features, c.embed_dim, padding_idx=0)
        # Zeros: a feature that training never saw (a goal slot the stories do not mention, a new
        # word) adds nothing at prediction time, instead of a random vector.
        nn.init.zeros_(self.embed.weight)
        self.embed_bias = nn.Parameter(torch.zeros(c.embed_dim))
        self.drop = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(
            c.embed_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
        )
        out_dim = c.hidden_size
        if c.attention:
            self.query = nn.Linear(c.hidden_size, c.hidden_size, bias=False)
            self.key = nn.Linear(c.hidden_size, c.hidden_size, bias=False)
            self.value = nn.Linear(c.hidden_size, c.hidden_size, bias=False)
            out_dim = 2 * c.hidden_size
        if c.skip_input:
            out_dim += c.embed_dim
        # Each label's own weights; with label words only, just a bias (similar texts score alike).
        if c.label_weights:
            self.head = nn.Linear(out_dim, c.num_labels)
        else:
            self.head_bias = nn.Parameter(torch.zeros(c.num_labels))
        if c.label_features:
            # Labels with words (bot texts, action names) share what is learned about each word.
            self.label_embed = nn.Embedding(c.label_features, out_dim, padding_idx=0)
            nn.init.normal_(self.label_embed.weight, std=0.02)
            self.register_buffer("label_idx", torch.zeros(c.num_labels, 1, dtype=torch.long))
            self.register_buffer("label_val", torch.zeros(c.num_labels, 1))

    def set_label_words(self, idx: torch.Tensor, val: torch.Tensor) -> None:
        """Each label's word indices and weights, (A, L) each, padded with index 0."""
        assert idx.shape[0] == self.config.num_labels, (idx.shape[0], self.config.num_labels)
        self.label_idx = idx
        self.label_val = val

    def encode(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        """Sparse features (B, T, K) -> input vectors (B, T, E)."""
        if self.training and self.config.feature_dropout > 0:
            # Leaving out single features teaches the tracker not to lean on any one of them.
            keep = torch.rand(val.shape) >= self.config.feature_dropout  # (B, T, K)
            val = val * keep
        x = (self.embed(idx) * val.unsqueeze(-1)).sum(dim=2) + self.embed_bias  # (B, T, E)
        return self.drop(x)

    def forward(
        self,
        idx: torch.Tensor,
        val: torch.Tensor,
        state: LSTMState | None = None,
        memory: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, LSTMState, torch.Tensor]:
        """Run the LSTM over T new steps from ``state`` (None: a new conversation).

        ``memory`` (B, M, H) holds earlier LSTM outputs for attention (inference, one step at a
        time); without it, steps attend to each other causally (training, whole conversations).
        Returns label scores (B, T, A), the new (h, c), and the LSTM outputs (B, T, H).
        """
        x = self.encode(idx, val)  # (B, T, E)
        if self.training or x.shape[1] > STEPWISE_MAX:
            out, new_state = self.lstm(x, state)  # out: (B, T, H), one fused kernel
        else:
            outs = []
            for t in range(x.shape[1]):
                h, state = self.lstm_step(x[:, t], state)  # h: (B, H)
                outs.append(h)
            out, new_state = torch.stack(outs, dim=1), state  # (B, T, H)
            assert new_state is not None
        z = self.drop(out)
        if self.config.attention:
            z = torch.cat([z, self.attend(out, memory)], dim=-1)  # (B, T, 2H)
        if self.config.skip_input:
            # The current state straight to the head, beside the history the LSTM summarises.
            z = torch.cat([z, x], dim=-1)  # (B, T, D)
        return self.scores(z), new_state, out

    def lstm_step(self, x: torch.Tensor, state: LSTMState | None) -> tuple[torch.Tensor, LSTMState]:
        """One step of ``self.lstm`` written out, for prediction: x (B, E) -> h (B, H).

        Same weights, same result (to float rounding). A single step through ``nn.LSTM`` costs
        far more on a CPU, and several times more again when its threads wait on a busy machine.
        """
        c = self.config
        if state is None:
            zeros = x.new_zeros(c.num_layers, x.shape[0], c.hidden_size)
            state = (zeros, zeros)
        h_prev, c_prev = state  # (L, B, H) each
        hs, cs = [], []
        inp = x
        for layer in range(c.num_layers):
            w_ih, w_hh, b_ih, b_hh = (
                getattr(self.lstm, f"{name}_l{layer}")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            gates = F.linear(inp, w_ih, b_ih) + F.linear(h_prev[layer], w_hh, b_hh)  # (B, 4H)
            i, f, g, o = gates.chunk(4, dim=-1)
            cell = torch.sigmoid(f) * c_prev[layer] + torch.sigmoid(i) * torch.tanh(g)
            inp = torch.sigmoid(o) * torch.tanh(cell)  # (B, H)
            hs.append(inp)
            cs.append(cell)
        return inp, (torch.stack(hs), torch.stack(cs))

    def attend(self, out: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
        """Each step's view of the last ``attention_window`` LSTM outputs, (B, T, H)."""
        _, T, H = out.shape
        keys = out if memory is None else torch.cat([memory, out], dim=1)  # (B, S, H)
        S = keys.shape[1]
        q, k, v = self.query(out), self.key(keys), self.value(keys)
        att = q @ k.transpose(1, 2) / math.sqrt(H)  # (B, T, S)
        # Step t (at position S - T + t among the keys) sees keys within the window, none later.
        pos_q = torch.arange(S - T, S).unsqueeze(1)  # (T, 1)
        pos_k = torch.arange(S).unsqueeze(0)  # (1, S)
        visible = (pos_k <= pos_q) & (pos_k > pos_q - self.config.attention_window)  # (T, S)
        att = att.masked_fill(~visible, float("-inf"))
        return self.drop(F.softmax(att, dim=-1)) @ v  # (B, T, H)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Label scores (B, T, A) from the tracker's output (B, T, D)."""
        if not self.training and 1 < z.shape[1] <= STEPWISE_MAX:
            # Prediction over a few steps (``max_history``): one step at a time, as the LSTM. A
            # (T, D) x (D, A) product is shared out among threads, and on a busy CPU they wait
            # for each other: 17 ms instead of 0.2 ms for 5 steps of the restaurant bot.
            return torch.cat([self.scores(z[:, t : t + 1]) for t in range(z.shape[1])], dim=1)
        if self.config.label_weights:
            logits = self.head(z)  # (B, T, A)
        else:
            logits = self.head_bias.expand(*z.shape[:-1], -1)
        if self.config.label_features:
            labels = F.embedding_bag(  # each label: the weighted sum of its words' vectors
                self.label_idx,
                self.label_embed.weight,
                per_sample_weights=self.label_val,
                mode="sum",
                padding_idx=0,
            )  # (A, D)
            logits = logits + z @ labels.T  # (B, T, A)
        return logits


def masked_log_probs(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the allowed labels only; ``allowed`` broadcasts to ``logits``."""
    assert logits.shape[-1] == allowed.shape[-1], (logits.shape[-1], allowed.shape[-1])
    return F.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
