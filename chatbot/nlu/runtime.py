"""The joint network's forward pass in numpy, one message at a time: what serving runs.

``network.JointNet`` (torch) is what training fits; ``JointRuntime`` computes the same numbers (to
float32 rounding, pinned by tests) from its state dict, in eval mode (no dropout), for one message:
the ``b == 1`` path of ``network.collate``. Serving a model therefore never imports torch, which
would cost more than a second at startup.

Shapes: T tokens, L characters a token, F token features, H hidden units a direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from chatbot.blas import limit_blas_threads
from chatbot.ensemble import join_members, log_mean_softmax
from chatbot.errors import ModelFileError
from chatbot.lstm_cell import CellBuffers, fused_gates
from chatbot.model_file import to_numpy
from chatbot.nlu.crf_decoder import CRFDecoder, MeanMarginalsDecoder
from chatbot.nlu.features import Encoded
from chatbot.nlu.settings import NetSizes, NLUSettings

if TYPE_CHECKING:
    from chatbot.nlu.network import JointNet

# The CRF's allowed transitions (K, K), first tags (K,) and last tags (K,): from the tag names.
Transitions = tuple[np.ndarray, np.ndarray, np.ndarray]


class MessageOutputs(NamedTuple):
    intent_logits: np.ndarray  # (intents,), the BiLSTM head
    ngram_logits: np.ndarray | None  # (intents,), the linear model of the n-grams
    emissions: np.ndarray | None  # (T, tags) float64 for the CRF decoder; (members, T, tags) for
    # an ensemble's MeanMarginalsDecoder
    role_logits: np.ndarray | None  # (T, roles)
    group_logits: np.ndarray | None  # (T, groups)
    response_logits: np.ndarray | None  # (responses,)


def state_shapes(settings: NLUSettings, sizes: NetSizes) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor of ``JointNet``'s state dict, in its order."""
    s, h = settings, settings.hidden
    state = 2 * h + s.self_attention  # what the heads read
    token_dim = s.word_dim + s.char_filters + sizes.lexical + sizes.patterns
    bag = s.count_vectors_dim if sizes.ngrams else 0
    shapes: dict[str, tuple[int, ...]] = {
        "word_emb.weight": (sizes.words, s.word_dim),
        "char_emb.weight": (sizes.chars, s.char_dim),
        "char_cnn.weight": (s.char_filters, s.char_dim, 3),
        "char_cnn.bias": (s.char_filters,),
    }
    for layer in range(s.lstm_layers):
        inputs = token_dim if layer == 0 else 2 * h
        for suffix in ("", "_reverse"):
            shapes[f"encoder.weight_ih_l{layer}{suffix}"] = (4 * h, inputs)
            shapes[f"encoder.weight_hh_l{layer}{suffix}"] = (4 * h, h)
            shapes[f"encoder.bias_ih_l{layer}{suffix}"] = (4 * h,)
            shapes[f"encoder.bias_hh_l{layer}{suffix}"] = (4 * h,)

    def linear(name: str, out: int, inputs: int, bias: bool = True) -> None:
        shapes[f"{name}.weight"] = (out, inputs)
        if bias:
            shapes[f"{name}.bias"] = (out,)

    def pool(name: str) -> None:
        linear(f"{name}.proj", s.attention_dim, state)
        linear(f"{name}.score", 1, s.attention_dim, bias=False)

    if s.self_attention > 0:
        for part in ("query", "key", "value"):
            linear(f"self_attention.{part}", s.self_attention, 2 * h)
    if sizes.ngrams:
        shapes["ngram_bag.weight"] = (sizes.ngrams, s.count_vectors_dim)
        if s.ngram_intent_weight > 0:
            shapes["ngram_intents.weight"] = (sizes.ngrams, sizes.intents)
            if s.ngram_model == "tfidf":
                shapes["ngram_tfidf.idf"] = (sizes.ngrams,)
                shapes["ngram_tfidf.bias"] = (sizes.intents,)
    pool("intent_pool")
    linear("intent_out", sizes.intents, 2 * state + bag + sizes.patterns)
    if s.token_intent:
        linear("token_intents", sizes.intents, state)
    if sizes.tags:
        linear("tag_out", sizes.tags, state)
        if sizes.patterns:
            linear("pattern_tags", sizes.tags, sizes.patterns, bias=False)
        if s.intent_to_tagger:
            linear("intent_tags", sizes.tags, sizes.intents, bias=False)
        shapes["crf.transitions"] = (sizes.tags, sizes.tags)
        shapes["crf.start"] = (sizes.tags,)
        shapes["crf.end"] = (sizes.tags,)
    if sizes.roles > 1:
        linear("role_out", sizes.roles, state)
    if sizes.groups > 1:
        linear("group_out", sizes.groups, state)
    if sizes.responses:
        pool("response_pool")
        linear("response_out", sizes.responses, state + bag)
    return shapes


class _Pool(NamedTuple):
    """Attention pooling: softmax over tokens of tanh(states @ proj + bias) @ score."""

    proj: np.ndarray  # (2H, attention)
    bias: np.ndarray  # (attention,)
    score: np.ndarray  # (attention,)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        scores = np.tanh(states @ self.proj + self.bias) @ self.score  # (T,)
        weights = np.exp(scores - scores.max())
        return (weights / weights.sum()) @ states  # (2H,)


class _Linear(NamedTuple):
    weight: np.ndarray  # (in, out): torch's weight transposed
    bias: np.ndarray | None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight
        if self.bias is not None:
            y += self.bias
        return y


class _SelfAttention(NamedTuple):
    """Scaled dot-product self-attention over the tokens: (T, 2H) -> (T, dim)."""

    query: _Linear
    key: _Linear
    value: _Linear

    def __call__(self, states: np.ndarray) -> np.ndarray:
        q, k = self.query(states), self.key(states)
        scores = (q @ k.T) * np.float32(q.shape[1] ** -0.5)  # (T, T)
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=1, keepdims=True)
        return weights @ self.value(states)


class _LSTMLayer(NamedTuple):
    """Both directions of one bidirectional layer, as ``chatbot.lstm_cell.fused_gates`` orders
    and scales them."""

    w_ih: np.ndarray  # (F, 2 * 4H): forward gates, then backward gates
    bias: np.ndarray  # (2 * 4H,): bias_ih + bias_hh
    w_hh: np.ndarray  # (2, H, 4H): forward, backward


class JointRuntime:
    """``JointNet``'s forward pass for one message, from its state dict as numpy arrays."""

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        settings: NLUSettings,
        sizes: NetSizes,
        transitions: Transitions | None,
    ) -> None:
        limit_blas_threads()
        expected = state_shapes(settings, sizes)
        misfits = [f"{name} is missing" for name in expected if name not in weights]
        misfits += [
            f"{name} is not a tensor of this network" for name in weights if name not in expected
        ]
        misfits += [
            f"{name} is {tuple(np.shape(weights[name]))}, the settings say {shape}"
            for name, shape in expected.items()
            if name in weights and tuple(np.shape(weights[name])) != shape
        ]
        if misfits:
            raise ModelFileError("NLU model tensors do not fit its settings: " + "; ".join(misfits))
        self.settings, self.sizes = settings, sizes
        # The state dict as given (float32), in JointNet's order: what a model file holds.
        self.weights = {k: np.ascontiguousarray(weights[k], dtype=np.float32) for k in expected}
        w = self.weights
        self.hidden = settings.hidden
        self.word_emb = w["word_emb.weight"]  # (words, word_dim)
        self.char_table = _char_table(w["char_emb.weight"], w["char_cnn.weight"])
        self.char_bias = w["char_cnn.bias"]
        self.layers = [_lstm_layer(w, k) for k in range(settings.lstm_layers)]
        self.self_attention = (
            _SelfAttention(
                *(_linear(w, f"self_attention.{part}") for part in ("query", "key", "value"))
            )
            if settings.self_attention > 0
            else None
        )
        self.ngram_bag = w.get("ngram_bag.weight")  # (ngrams, count_vectors_dim)
        self.ngram_intents = w.get("ngram_intents.weight")  # (ngrams, intents)
        self.ngram_idf = w.get("ngram_tfidf.idf")  # (ngrams,), the TF-IDF model only
        self.ngram_bias = w.get("ngram_tfidf.bias")  # (intents,)
        self.intent_pool = _pool(w, "intent_pool")
        self.intent_out = _linear(w, "intent_out")
        self.token_intents = _linear(w, "token_intents") if settings.token_intent else None
        self.tag_out = _linear(w, "tag_out") if sizes.tags else None
        self.pattern_tags = _linear(w, "pattern_tags") if "pattern_tags.weight" in w else None
        self.intent_tags = _linear(w, "intent_tags") if "intent_tags.weight" in w else None
        self.role_out = _linear(w, "role_out") if "role_out.weight" in w else None
        self.group_out = _linear(w, "group_out") if "group_out.weight" in w else None
        self.response_pool = _pool(w, "response_pool") if sizes.responses else None
        self.response_out = _linear(w, "response_out") if sizes.responses else None
        self.decoder: CRFDecoder | None = None
        if sizes.tags:
            if transitions is None:
                raise ValueError("an entity tagger needs its allowed transitions")
            learned = (w["crf.transitions"], w["crf.start"], w["crf.end"])
            self.decoder = CRFDecoder.from_learned(learned, transitions)

    @classmethod
    def from_net(cls, net: JointNet, settings: NLUSettings) -> JointRuntime:
        """The runtime of a torch ``JointNet`` (training hands its network over). The allowed
        transitions are where the CRF's penalties are 0."""
        weights = {k: to_numpy(v).copy() for k, v in net.state_dict().items()}
        transitions: Transitions | None = None
        if net.crf is not None:
            crf = net.crf
            allowed, first, last = (
                to_numpy(p) == 0 for p in (crf.trans_penalty, crf.start_penalty, crf.end_penalty)
            )
            transitions = (allowed, first, last)
        return cls(weights, settings, net.sizes, transitions)

    def __call__(self, message: Encoded) -> MessageOutputs:
        states = self.token_inputs(message)
        for layer in self.layers:
            states = _bilstms([states], [layer], layer.w_hh, self.hidden)[0]  # (T, 2H)
        return self.heads(states, message)

    def token_inputs(self, message: Encoded) -> np.ndarray:
        """What the encoder reads: each token's word, character, lexical and pattern features
        (T, F)."""
        assert len(message.words), "a message needs at least one token"
        return np.concatenate(
            [
                self.word_emb[message.words],
                self._char_features(message.chars),
                message.lexical,
                message.patterns,
            ],
            axis=1,
        )

    def heads(self, states: np.ndarray, message: Encoded) -> MessageOutputs:
        """The outputs of the encoder's last states (T, 2H)."""
        if self.self_attention is not None:
            states = np.concatenate([states, self.self_attention(states)], axis=1)

        bag = (
            [_bag(self.ngram_bag, message.ngrams, mean=True)] if self.ngram_bag is not None else []
        )
        matched = [message.patterns.max(axis=0)] if message.patterns.shape[1] else []  # (P,)
        sentence = np.concatenate([self.intent_pool(states), states.max(axis=0), *bag, *matched])
        intent_logits = self.intent_out(sentence)
        token_intents = None
        vote = self.settings.token_intent_vote
        if self.token_intents is not None and (vote or self.intent_tags is not None):
            # each token's intent: their mean log-probabilities, and what the tagger reads
            token_logits = self.token_intents(states)  # (T, intents)
            shifted = token_logits - token_logits.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            if vote:
                intent_logits += (shifted - np.log(total)).mean(axis=0)
            if self.intent_tags is not None:  # the tagger reads them
                token_intents = exp / total
        ngram_logits = None
        if self.ngram_intents is not None:
            if self.ngram_idf is not None and self.ngram_bias is not None:
                ngram_logits = _tfidf_logits(
                    self.ngram_intents, self.ngram_idf, self.ngram_bias, message.ngrams
                )
            else:
                ngram_logits = _bag(self.ngram_intents, message.ngrams, mean=False)
        emissions = None
        if self.tag_out is not None:
            emissions = self.tag_out(states)  # (T, tags)
            if self.pattern_tags is not None:
                emissions += self.pattern_tags(message.patterns)
            if self.intent_tags is not None and token_intents is not None:
                emissions += self.intent_tags(token_intents)  # each token's own intent
            elif self.intent_tags is not None:  # the same scores on every token
                emissions += self.intent_tags(_softmax32(intent_logits))
            emissions = emissions.astype(np.float64)
        roles = self.role_out(states) if self.role_out is not None else None
        groups = self.group_out(states) if self.group_out is not None else None
        responses = None
        if self.response_pool is not None and self.response_out is not None:
            responses = self.response_out(np.concatenate([self.response_pool(states), *bag]))
        return MessageOutputs(intent_logits, ngram_logits, emissions, roles, groups, responses)

    def _char_features(self, chars: np.ndarray) -> np.ndarray:
        """The width-3 character convolution, max-pooled, relu: (T, L) ids -> (T, filters).

        ``char_table`` holds each character's contribution at each of the 3 window positions; the
        extra last row stands for the zero padding on either side of a token's characters.
        """
        t, length = chars.shape
        ids = np.full((t, length + 2), len(self.char_table) - 1, np.int64)
        ids[:, 1:-1] = chars
        parts = self.char_table[ids]  # (T, L+2, 3 * filters)
        f = parts.shape[2] // 3
        conv = parts[:, :-2, :f] + parts[:, 1:-1, f : 2 * f]
        conv += parts[:, 2:, 2 * f :]  # (T, L, filters), less the bias
        # relu and the bias commute with the max over positions.
        out = conv.max(axis=1)
        out += self.char_bias
        return np.maximum(out, 0.0, out=out)


def _bilstms(
    xs: Sequence[np.ndarray], layers: Sequence[_LSTMLayer], w_hh: np.ndarray, hidden: int
) -> list[np.ndarray]:
    """Bidirectional LSTM layers of one width over the same T tokens, stepped together (an
    ensemble's members in one loop): (T, F) each -> (T, 2H) each. ``w_hh``: the layers' ``w_hh``
    stacked (2 x layers, H, 4H). Both directions step together: step s reads token s forwards
    and token T-1-s backwards. The buffers are this call's own: parses may run in several
    threads at once."""
    t, h, n = len(xs[0]), hidden, 2 * len(xs)
    inputs = np.empty((t, n, 1, 4 * h), np.float32)
    for k, (x, layer) in enumerate(zip(xs, layers, strict=True)):
        projected = (x @ layer.w_ih + layer.bias).reshape(t, 2, 4 * h)
        inputs[:, 2 * k, 0] = projected[:, 0]
        inputs[:, 2 * k + 1, 0] = projected[::-1, 1]
    out = np.empty((t, n, 1, h), np.float32)  # hidden states by step
    cell = np.zeros((n, 1, h), np.float32)
    buffers = CellBuffers((n, 1), h)
    for s in range(t):
        if s:
            np.matmul(out[s - 1], w_hh, out=buffers.gates)  # (n, 1, H) @ (n, H, 4H)
            buffers.gates += inputs[s]
        else:
            buffers.gates[...] = inputs[0]
        buffers.step(cell, out[s])
    results = []
    for k in range(len(xs)):
        states = np.empty((t, 2 * h), np.float32)
        states[:, :h] = out[:, 2 * k, 0]
        states[:, h:] = out[::-1, 2 * k + 1, 0]
        results.append(states)
    return results


class EnsembleRuntime:
    """Several ``JointRuntime`` members of one architecture (``settings.ensemble_size``), read
    as one: the intent, n-gram, role, group and response outputs are the log of the members'
    mean probabilities (so a softmax of them is that mean), and the entity tags come from the
    members' mean CRF scores, emissions and transitions alike (a product of the members' tag
    distributions, renormalised), or, with ``settings.ensemble_tags == "marginals"``, from the
    mean of the members' own tag marginals (``MeanMarginalsDecoder``: ``emissions`` then holds
    the members' emissions stacked)."""

    def __init__(
        self, members: Sequence[JointRuntime], settings: NLUSettings | None = None
    ) -> None:
        """``settings``: the ensemble's, where they differ from the first member's."""
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        first = members[0]
        if any(m.sizes != first.sizes for m in members):
            raise ModelFileError("NLU ensemble members differ in their vocabulary or label sizes")
        self.members = list(members)
        self.settings, self.sizes = settings or first.settings, first.sizes
        self._w_hh = [
            np.ascontiguousarray(np.concatenate([m.layers[k].w_hh for m in members]))
            for k in range(len(first.layers))
        ]
        self.decoder: CRFDecoder | MeanMarginalsDecoder | None = None
        decoders = [m.decoder for m in members if m.decoder is not None]
        if decoders and self.settings.ensemble_tags == "marginals":
            self.decoder = MeanMarginalsDecoder(decoders)
        elif decoders:
            self.decoder = CRFDecoder(
                *(np.mean([getattr(d, part) for d in decoders], axis=0) for part in _CRF_PARTS)
            )

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Every member's state dict, each name prefixed with ``ensemble.<member's index>.``."""
        return join_members([member.weights for member in self.members])

    def __call__(self, message: Encoded) -> MessageOutputs:
        # The members' encoders step through the tokens together: one loop, not one a member.
        states = [member.token_inputs(message) for member in self.members]
        for k, w_hh in enumerate(self._w_hh):
            layers = [member.layers[k] for member in self.members]
            states = _bilstms(states, layers, w_hh, self.settings.hidden)
        outs = [m.heads(x, message) for m, x in zip(self.members, states, strict=True)]
        emitted = [o.emissions for o in outs if o.emissions is not None]
        emissions = None
        if emitted and isinstance(self.decoder, MeanMarginalsDecoder):
            emissions = np.stack(emitted)  # (members, T, K): each member's CRF decodes its own
        elif emitted:
            emissions = sum(emitted[1:], emitted[0]) / len(emitted)
        return MessageOutputs(
            intent_logits=_log_mean_softmax([o.intent_logits for o in outs]),  # type: ignore[arg-type]
            ngram_logits=_log_mean_softmax([o.ngram_logits for o in outs]),
            emissions=emissions,
            role_logits=_log_mean_softmax([o.role_logits for o in outs]),
            group_logits=_log_mean_softmax([o.group_logits for o in outs]),
            response_logits=_log_mean_softmax([o.response_logits for o in outs]),
        )


_CRF_PARTS = ("trans", "start", "end")


def _log_mean_softmax(logits: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """log(mean of softmax(each) over the last axis), float64; None where the outputs are."""
    if any(x is None for x in logits):
        return None
    return log_mean_softmax([x for x in logits if x is not None])


def _char_table(emb: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(chars + 1, 3 * filters): each character's embedding times the kernel at window positions
    0, 1 and 2; the last row, zeros, is the padding outside a token."""
    chars, filters = len(emb), len(kernel)
    table = np.zeros((chars + 1, 3, filters), np.float32)
    table[:chars] = np.einsum("vc,fck->vkf", emb.astype(np.float64), kernel.astype(np.float64))
    return table.reshape(chars + 1, 3 * filters)


def _lstm_layer(w: Mapping[str, np.ndarray], layer: int) -> _LSTMLayer:
    ih, hh, bias = [], [], []
    for suffix in ("", "_reverse"):
        name = f"encoder.{{}}_l{layer}{suffix}"
        ih.append(fused_gates(w[name.format("weight_ih")]).T)
        hh.append(fused_gates(w[name.format("weight_hh")]).T)
        bias.append(fused_gates(w[name.format("bias_ih")] + w[name.format("bias_hh")]))
    return _LSTMLayer(
        np.ascontiguousarray(np.concatenate(ih, axis=1)),
        np.concatenate(bias),
        np.ascontiguousarray(np.stack(hh)),
    )


def _linear(w: Mapping[str, np.ndarray], name: str) -> _Linear:
    return _Linear(np.ascontiguousarray(w[f"{name}.weight"].T), w.get(f"{name}.bias"))


def _pool(w: Mapping[str, np.ndarray], name: str) -> _Pool:
    proj = _linear(w, f"{name}.proj")
    assert proj.bias is not None
    return _Pool(proj.weight, proj.bias, w[f"{name}.score.weight"][0])


def _softmax32(logits: np.ndarray) -> np.ndarray:
    """Softmax in float32, as torch computes it in the network."""
    x = np.exp(logits - logits.max())
    return x / x.sum()


def _tfidf_logits(
    weight: np.ndarray, idf: np.ndarray, bias: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """The TF-IDF n-gram model's logits: the message's idf vector scaled to unit length, times
    the weights, plus the biases; the biases alone for no known n-gram."""
    if not len(ids):
        return bias.copy()
    values = idf[ids]
    return (values / max(float(np.sqrt(values @ values)), 1e-12)) @ weight[ids] + bias


def _bag(weight: np.ndarray, ids: np.ndarray, *, mean: bool) -> np.ndarray:
    """torch's EmbeddingBag for one bag: the mean or sum of the rows; zeros for no ids."""
    if not len(ids):
        return np.zeros(weight.shape[1], np.float32)
    rows = weight[ids]
    return rows.mean(axis=0) if mean else rows.sum(axis=0)
