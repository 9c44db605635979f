"""The LSTM dialog-state tracker at prediction time, in numpy: what the server runs.

``DialogueStateTracker`` (torch) is what training fits; this computes the same numbers (to float
rounding, pinned by tests) from its weights, one conversation at a time, one step after another.
Serving a model therefore never imports torch, which would cost a second at startup, and a step
costs a few numpy calls (tens of microseconds) instead of torch's per-call overhead. The inputs'
share of the gates is one product for all steps of a layer; a step is then one small product
and ``chatbot.lstm_cell``'s in-place update.

Shapes: T steps, K sparse features per step, H hidden size, A labels, D the head's input width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chatbot.blas import limit_blas_threads
from chatbot.ensemble import join_members, log_mean_softmax
from chatbot.errors import ModelFileError
from chatbot.lstm_cell import CellBuffers, fused_gates
from chatbot.model_file import to_numpy

# (h, c) of the LSTM, each (num_layers, H)
HC = tuple[np.ndarray, np.ndarray]


@dataclass
class TrackerConfig:
    num_features: int  # sparse input features, 0 is padding
    num_labels: int  # actions (and end-to-end bot texts) the policy chooses from
    embed_dim: int = 64  # width of the input layer
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    feature_dropout: float = 0.1  # in training, each input feature is left out this often
    attention: bool = False  # attend over earlier LSTM outputs
    attention_window: int = 16  # how many steps back attention reaches (including the current)
    skip_input: bool = False  # the input layer's output also goes straight to the head
    label_weights: bool = True  # False: labels are scored by their words only (and a bias)
    label_features: int = 0  # words of label texts (0: labels are plain classes)
    max_history: int | None = None  # None: the LSTM reads the whole conversation


@dataclass(frozen=True)
class _Layer:
    """One LSTM layer's weights, as ``chatbot.lstm_cell.fused_gates`` orders and scales them."""

    w_ih: np.ndarray  # (input width, 4H)
    w_hh: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,)


def _layer(w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> _Layer:
    """From torch's (4H, in) and (4H, H) weights and (4H,) bias."""
    return _Layer(
        np.ascontiguousarray(fused_gates(w_ih).T),
        np.ascontiguousarray(fused_gates(w_hh).T),
        fused_gates(bias).astype(np.float32),
    )


def tracker_shapes(config: TrackerConfig) -> dict[str, tuple[int, ...] | None]:
    """The name and shape of every tensor of ``DialogueStateTracker``'s state dict (None: any
    shape, checked where it is read: the label words' (A, L) arrays, L the longest label)."""
    c = config
    shapes: dict[str, tuple[int, ...] | None] = {
        "embed.weight": (c.num_features, c.embed_dim),
        "embed_bias": (c.embed_dim,),
    }
    for layer in range(c.num_layers):
        width = c.embed_dim if layer == 0 else c.hidden_size
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * c.hidden_size, width)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * c.hidden_size, c.hidden_size)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * c.hidden_size,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * c.hidden_size,)
    out_dim = c.hidden_size
    if c.attention:
        for part in ("query", "key", "value"):
            shapes[f"{part}.weight"] = (c.hidden_size, c.hidden_size)
        out_dim = 2 * c.hidden_size
    if c.skip_input:
        out_dim += c.embed_dim
    if c.label_weights:
        shapes["head.weight"] = (c.num_labels, out_dim)
        shapes["head.bias"] = (c.num_labels,)
    else:
        shapes["head_bias"] = (c.num_labels,)
    if c.label_features:
        shapes["label_embed.weight"] = (c.label_features, out_dim)
        shapes["label_idx"] = None
        shapes["label_val"] = None
    return shapes


def check_tracker_weights(config: TrackerConfig, weights: Mapping[str, np.ndarray]) -> None:
    """A ``ModelFileError`` naming the first tensor that is missing, is not numbers or has another
    shape than the settings give it, or a tensor the settings do not have."""
    shapes = tracker_shapes(config)
    for name, want in shapes.items():
        if name not in weights:
            raise ModelFileError(f"LSTM tracker weights: {name} is missing")
        got = np.asarray(weights[name])
        if got.dtype.kind not in "fiu":
            raise ModelFileError(f"LSTM tracker weights: {name} holds {got.dtype}, not numbers")
        if want is not None and got.shape != want:
            raise ModelFileError(
                f"LSTM tracker weights: {name} is {got.shape}, the settings say {want}"
            )
    if config.label_features:
        idx, val = np.asarray(weights["label_idx"]), np.asarray(weights["label_val"])
        if idx.ndim != 2 or idx.shape != val.shape or len(idx) != config.num_labels:
            raise ModelFileError(
                f"LSTM tracker weights: label_idx {idx.shape} and label_val {val.shape} must "
                f"both be ({config.num_labels}, words)"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= config.label_features):
            raise ModelFileError(
                f"LSTM tracker weights: label_idx holds word numbers outside "
                f"0..{config.label_features - 1}"
            )
    strays = sorted(set(weights) - set(shapes))
    if strays:
        raise ModelFileError(f"LSTM tracker weights: unknown tensors {', '.join(strays[:5])}")


class TrackerRuntime:
    """The tracker's forward pass (eval mode) from its state dict, as numpy arrays."""

    def __init__(self, config: TrackerConfig, weights: Mapping[str, np.ndarray]) -> None:
        limit_blas_threads()
        check_tracker_weights(config, weights)
        self.config = c = config
        # The state dict as given (dtypes kept): what a model file holds.
        self.weights = {k: np.array(v) for k, v in weights.items()}
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.embed = w["embed.weight"]  # (F, E)
        self.embed_bias = w["embed_bias"]
        self.layers: list[_Layer] = []
        for layer in range(c.num_layers):
            bias = w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"]
            w_ih, w_hh = w[f"lstm.weight_ih_l{layer}"], w[f"lstm.weight_hh_l{layer}"]
            self.layers.append(_layer(w_ih, w_hh, bias))
        out_dim = c.hidden_size
        if c.attention:
            self.query = np.ascontiguousarray(w["query.weight"].T)
            self.key = np.ascontiguousarray(w["key.weight"].T)
            self.value = np.ascontiguousarray(w["value.weight"].T)
            out_dim = 2 * c.hidden_size
        if c.skip_input:
            out_dim += c.embed_dim
        # The head: each label's own weights, plus the sum of its words' vectors.
        head = np.zeros((c.num_labels, out_dim), np.float32)
        if c.label_weights:
            head += w["head.weight"]
            bias = w["head.bias"]
        else:
            bias = w["head_bias"]
        if c.label_features:
            idx = np.asarray(weights["label_idx"]).astype(np.int64)  # (A, L)
            val = w["label_val"] * (idx != 0)  # index 0 is padding: left out
            head += np.einsum("al,ald->ad", val, w["label_embed.weight"][idx])
        self.head = np.ascontiguousarray(head.T)  # (D, A)
        self.head_bias = bias.astype(np.float32)
        self.steps_run = 0  # LSTM steps computed, for tests and benchmarks
        self.output_width = c.hidden_size  # of one step's LSTM output, what attention reads

    @classmethod
    def from_module(cls, module: object) -> TrackerRuntime:
        """The runtime of a torch ``DialogueStateTracker`` (training hands its module over)."""
        state = module.state_dict()  # type: ignore[attr-defined]
        return cls(module.config, {k: to_numpy(v) for k, v in state.items()})  # type: ignore[attr-defined]

    def encode(self, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Sparse features (T, K) -> input vectors (T, E)."""
        return np.einsum("tk,tke->te", val, self.embed[idx]) + self.embed_bias

    def zero_state(self) -> HC:
        c = self.config
        zeros = np.zeros((c.num_layers, c.hidden_size), np.float32)
        return zeros, zeros

    def _run_layer(
        self, layer: _Layer, inputs: np.ndarray, h: np.ndarray, cell: np.ndarray
    ) -> np.ndarray:
        """One layer over all steps: inputs (T, in) -> outputs (T, H), from the state (h, c);
        ``cell`` (H,) is updated in place and ends as the last step's."""
        n = self.config.hidden_size
        pre = inputs @ layer.w_ih
        pre += layer.bias  # (T, 4H)
        out = np.empty((len(inputs), n), np.float32)
        buffers = CellBuffers((), n)
        for t in range(len(inputs)):
            np.matmul(h, layer.w_hh, out=buffers.gates)
            buffers.gates += pre[t]
            h = out[t]
            buffers.step(cell, h)
        return out

    def forward(
        self,
        idx: np.ndarray,
        val: np.ndarray,
        state: HC | None = None,
        memory: np.ndarray | None = None,
    ) -> tuple[np.ndarray, HC, np.ndarray]:
        """Run T new steps from ``state`` (None: a new conversation). ``memory`` (M, H): earlier
        LSTM outputs for attention. Returns label scores (T, A), the new (h, c), outputs (T, H)."""
        x = self.encode(idx, val).astype(np.float32, copy=False)
        assert len(x), "at least one step"
        h_prev, c_prev = state if state is not None else self.zero_state()
        out, hs, cs = x, [], []
        for layer, weights in enumerate(self.layers):
            cell = c_prev[layer].astype(np.float32)  # a copy: the caller's state stays as it was
            out = self._run_layer(weights, out, h_prev[layer], cell)
            hs.append(out[-1])
            cs.append(cell)
        self.steps_run += len(x)
        state = (np.stack(hs), np.stack(cs))
        z = out
        if self.config.attention:
            z = np.concatenate([z, self.attend(out, memory)], axis=1)
        if self.config.skip_input:
            z = np.concatenate([z, x], axis=1)
        return z @ self.head + self.head_bias, state, out

    def attend(self, out: np.ndarray, memory: np.ndarray | None) -> np.ndarray:
        """Each step's view of the last ``attention_window`` LSTM outputs, (T, H)."""
        t, h = out.shape
        keys = out if memory is None or not len(memory) else np.concatenate([memory, out])
        s = keys.shape[0]
        q, k, v = out @ self.query, keys @ self.key, keys @ self.value
        att = (q @ k.T) / math.sqrt(h)  # (T, S)
        pos_q = np.arange(s - t, s)[:, None]
        pos_k = np.arange(s)[None, :]
        visible = (pos_k <= pos_q) & (pos_k > pos_q - self.config.attention_window)
        att = np.where(visible, att, -np.inf)
        att = np.exp(att - att.max(axis=1, keepdims=True))
        return (att / att.sum(axis=1, keepdims=True)) @ v


class EnsembleTrackerRuntime:
    """Several trackers of one configuration (trained with different seeds), read as one: the
    label probabilities are the members' mean, returned as their log, so that softmax (and a
    label mask before it) gives the mean back. A conversation's (h, c) and LSTM outputs are the
    members' side by side: (h, c) each (members * layers, H), outputs (T, members * H), so that
    the policy caches and rolls them back as it does one tracker's."""

    def __init__(self, members: list[TrackerRuntime]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two trackers")
        first = members[0].config
        if any(m.config != first for m in members[1:]):
            raise ModelFileError("LSTM tracker ensemble: its members' settings differ")
        self.members = members
        self.config = first
        self.output_width = len(members) * first.hidden_size
        self.weights = join_members([m.weights for m in members])

    @property
    def steps_run(self) -> int:
        return self.members[0].steps_run

    def zero_state(self) -> HC:
        states = [m.zero_state() for m in self.members]
        return np.concatenate([h for h, _ in states]), np.concatenate([c for _, c in states])

    def forward(
        self,
        idx: np.ndarray,
        val: np.ndarray,
        state: HC | None = None,
        memory: np.ndarray | None = None,
    ) -> tuple[np.ndarray, HC, np.ndarray]:
        """``TrackerRuntime.forward`` of every member, each from its own rows of ``state`` and
        columns of ``memory``: the log of their mean label probabilities (T, A), their (h, c)
        and outputs side by side."""
        layers, width = self.config.num_layers, self.config.hidden_size
        logits, hs, cs, outs = [], [], [], []
        for i, member in enumerate(self.members):
            rows, columns = slice(i * layers, (i + 1) * layers), slice(i * width, (i + 1) * width)
            own = None if state is None else (state[0][rows], state[1][rows])
            seen = None if memory is None else memory[:, columns]
            scores, (h, c), out = member.forward(idx, val, own, seen)
            logits.append(scores)
            hs.append(h)
            cs.append(c)
            outs.append(out)
        return (
            log_mean_softmax(logits),
            (np.concatenate(hs), np.concatenate(cs)),
            np.concatenate(outs, axis=1),
        )
