"""LSTMPolicy: the next action from the LSTM dialog-state tracker, one LSTM step per prediction.

The server rebuilds a ``Conversation`` from the store for every user message, so the tracker's
state cannot live on the conversation. It lives here instead, in a bounded LRU cache keyed by the
conversation's sender id::

    sender_id -> (number of states consumed, the last few consumed states, each with the (h, c)
                  after it and its LSTM output, events seen, the last event seen,
                  the current state of the last prediction, already run one step ahead)

A prediction checks the entry against the conversation, runs the LSTM over the states added
since (usually none: the state a prediction is made in is run ahead, and it becomes the next past
state when its action is applied), then one step for the current state. A form running again on
its happy path folds its last turns out of ``conversation.states`` (as Rasa does): the cached
states are compared from the end and the LSTM state is rolled back to the last one that still
stands. Anything else that rewrites the past (a restart, a session start, a rewind or an undo
since the cached point, another conversation under the same id) rebuilds it from the first state;
a test pins that all this equals a full recompute. With ``max_history`` set, the tracker reads only
the last states, from a fresh LSTM state, and nothing is cached.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence, Set
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import identity
from chatbot.conversation.messages import has_words
from chatbot.conversation.state import INTENT, TEXT, State
from chatbot.dialogue.action_masks import ActionMasks, satisfied
from chatbot.dialogue.featurizer import Features, StateFeaturizer
from chatbot.dialogue.lstm_runtime import HC, EnsembleTrackerRuntime, TrackerConfig, TrackerRuntime
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.ensemble import split_members
from chatbot.errors import ModelFileError
from chatbot.model_file import to_numpy

if TYPE_CHECKING:
    from chatbot.dialogue.lstm_tracker import DialogueStateTracker

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 10_000
# How many consumed states can be rolled back (a form's happy-path re-run folds one or two).
ROLLBACK = 4
# Events after which the past states of a conversation are no longer what they were.
_REWRITING = frozenset({"restart", "session_started", "rewind", "undo"})


@dataclass
class _Step:
    """One consumed state: the (h, c) after it and its LSTM output (H,)."""

    state: State
    hc: HC | None
    out: np.ndarray


@dataclass
class _Entry:
    num_states: int = 0  # states consumed, the last ``len(tail)`` of them in ``tail``
    tail: list[_Step] = field(default_factory=list)
    num_events: int = 0
    last_event: tuple[Any, ...] | None = None
    ahead: _Step | None = None  # the current state of the last prediction, already run

    @property
    def hc(self) -> HC | None:
        return self.tail[-1].hc if self.tail else None


def _softmax(logits: np.ndarray) -> np.ndarray:
    probs = np.exp(logits - logits.max())
    return np.asarray(probs / probs.sum())


class LSTMPolicy(Policy):
    name = "LSTMPolicy"
    priority = 1

    def __init__(
        self,
        model: TrackerRuntime | EnsembleTrackerRuntime | DialogueStateTracker,
        featurizer: StateFeaturizer,
        trained: Any,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        use_intent_ranking: bool = True,
        priority: int = 1,
        masks: ActionMasks | None = None,
    ) -> None:
        """``model``: the trained torch ``DialogueStateTracker`` (training, tests), a
        ``TrackerRuntime`` (a model file's) or an ``EnsembleTrackerRuntime`` of several;
        ``trained``: (A,) booleans, numpy or torch."""
        self.runtime: TrackerRuntime | EnsembleTrackerRuntime = (
            model
            if isinstance(model, (TrackerRuntime, EnsembleTrackerRuntime))
            else TrackerRuntime.from_module(model)
        )
        self.trained = to_numpy(trained).astype(bool)  # labels the stories asked for; others masked
        assert self.trained.shape == (featurizer.num_labels,), (
            self.trained.shape,
            featurizer.num_labels,
        )
        self.featurizer = featurizer
        self.cache_size = cache_size
        self.use_intent_ranking = use_intent_ranking
        self.priority = priority
        # Responses that need slots (masked while they are unset), by label index.
        self.masks = masks or ActionMasks()
        self._masks = [
            (featurizer.label_index[name], needs)
            for name, needs in self.masks.needs.items()
            if name in featurizer.label_index
        ]
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        # Trained on end-to-end user steps: their words are features (``text=...``).
        self._reads_text = any(name.startswith("text=") for name in featurizer.index)
        self._features: dict[State, Features] = {}

    @property
    def config(self) -> TrackerConfig:
        return self.runtime.config

    # -- prediction ------------------------------------------------------------------------------

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        probs = self.probabilities(conversation, excluded)
        if probs is None:
            return None
        best = int(probs.argmax())
        return Prediction(
            self.featurizer.labels[best], float(probs[best]), self.name, self.priority
        )

    def probabilities(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> np.ndarray | None:
        """The probability of each label (A,) as the next action; None if all are masked."""
        current = conversation.current_state()
        by_text = self._by_text(conversation, current)
        if self.config.max_history is None:
            logits, text_logits = self._incremental(conversation, current, by_text)
        else:
            logits = self._window(conversation, current)
            text_logits = None if by_text is None else self._window(conversation, by_text)
        allowed = self._allowed(current, excluded, conversation.slots)
        if not bool(allowed.any()):
            return None
        probs = _softmax(np.where(allowed, logits.astype(np.float64), -np.inf))
        if text_logits is not None:
            # As Rasa's TED with end-to-end stories: the user's words and the intent each give
            # a prediction, and the more confident one counts.
            by_words = _softmax(np.where(allowed, text_logits.astype(np.float64), -np.inf))
            if by_words.max() > probs.max():
                return by_words
        return probs

    def _by_text(self, conversation: Conversation, current: State) -> State | None:
        """The current state with the user's words in place of the intent, where the model
        learned words from end-to-end stories (``- user: "..."`` steps without intent) and the
        latest message has words (not a ``/intent`` payload, not an external event); else None."""
        if not self._reads_text:
            return None
        state = dict(current)
        text = conversation.state_message.get("text")
        if state.get(INTENT) is None or not has_words(text):
            return None
        del state[INTENT]
        state[TEXT] = text
        return tuple(sorted(state.items()))

    def _allowed(self, state: State, excluded: Set[str], slots: Mapping[str, Any]) -> np.ndarray:
        """Labels that may be predicted: trained on, not denied by the state (no form to
        deactivate), not excluded, and not a response whose slots are unset."""
        allowed = self.trained.copy()
        for i in self.featurizer.denied(state):
            allowed[i] = False
        for i, needs in self._masks:
            if not satisfied(needs, slots):
                allowed[i] = False
        for name in excluded:
            label = self.featurizer.label_index.get(name)
            if label is not None:
                allowed[label] = False
        return allowed

    def _window(self, conversation: Conversation, current: State) -> np.ndarray:
        """Scores after reading the last ``max_history`` states from a fresh LSTM state."""
        assert self.config.max_history is not None
        states = conversation.recent_states(self.config.max_history)
        feats = [self.features(s) for s in states[:-1]]
        feats.append(self._current_features(conversation, current))
        idx, val = step_features(feats)
        logits, _, _ = self.runtime.forward(idx, val)  # (T, A)
        return logits[-1]

    def _incremental(
        self, conversation: Conversation, current: State, by_text: State | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores for the current state (and for ``by_text`` in its place, if given) after the
        cached LSTM state of the conversation's past states."""
        key = conversation.sender_id
        with self._lock:
            entry = self._cache.pop(key, None)
        states = conversation.states
        entry = self._checked(entry, conversation)
        ahead = entry.ahead
        entry.ahead = None
        n = entry.num_states
        if ahead is not None and len(states) > n and states[n] == ahead.state:
            self._push(entry, [ahead])
        self._consume(entry, states[entry.num_states :])
        feats = self._current_features(conversation, current)
        idx, val = step_features([feats])
        logits, hc, out = self.runtime.forward(idx, val, entry.hc, self._memory(entry))  # (1, A)
        if feats == self.features(current):  # not so when the NLU's probabilities were used
            entry.ahead = _Step(current, hc, out[0])
        text_logits = None
        if by_text is not None:
            idx, val = step_features([self.features(by_text)])
            text_logits = self.runtime.forward(idx, val, entry.hc, self._memory(entry))[0][-1]
        entry.num_events = len(conversation.events)
        entry.last_event = identity(conversation.events[-1]) if conversation.events else None
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return logits[-1], text_logits

    def _checked(self, entry: _Entry | None, conversation: Conversation) -> _Entry:
        """The cached entry, rolled back to the states that still stand; a fresh one if none."""
        if entry is None or not _same_conversation(entry, conversation):
            return _Entry()
        states = conversation.states
        base = entry.num_states - len(entry.tail)
        kept = 0
        for k, step in enumerate(entry.tail):
            if base + k >= len(states) or states[base + k] != step.state:
                break
            kept = k + 1
        if kept == len(entry.tail):
            return entry
        short = kept < min(base + kept, self._reach)  # too few outputs left for attention
        if (kept == 0 and base > 0) or (kept and entry.tail[kept - 1].hc is None) or short:
            return _Entry()  # folded further back than we can roll back
        entry.num_states = base + kept
        entry.tail = entry.tail[:kept]
        entry.ahead = None  # it followed a state that is gone
        return entry

    def _consume(self, entry: _Entry, states: Sequence[State]) -> None:
        """Run the LSTM over past states, one by one, keeping the (h, c) after the last few of
        them (for rolling back)."""
        if not states:
            return
        batch, single = states[: -ROLLBACK or None], states[-ROLLBACK:]
        if len(states) <= ROLLBACK:
            batch, single = [], states
        if batch:
            idx, val = step_features([self.features(s) for s in batch])
            _, hc, out = self.runtime.forward(idx, val, entry.hc, self._memory(entry))  # (N, H)
            steps = [_Step(s, None, out[i]) for i, s in enumerate(batch)]
            steps[-1].hc = hc
            self._push(entry, steps)
        for state in single:
            idx, val = step_features([self.features(state)])
            _, hc, out = self.runtime.forward(idx, val, entry.hc, self._memory(entry))
            self._push(entry, [_Step(state, hc, out[0])])

    def _push(self, entry: _Entry, steps: Sequence[_Step]) -> None:
        entry.num_states += len(steps)
        entry.tail = [*entry.tail, *steps][-(ROLLBACK + self._reach) :]

    @property
    def _reach(self) -> int:
        """How many earlier LSTM outputs attention looks back on (0 without attention)."""
        return self.config.attention_window - 1 if self.config.attention else 0

    def _memory(self, entry: _Entry) -> np.ndarray | None:
        """The LSTM outputs that attention looks back on, (M, H); None without attention."""
        if not self.config.attention:
            return None
        reach = self._reach
        outs = [step.out for step in entry.tail[max(0, len(entry.tail) - reach) :]] if reach else []
        if not outs:
            return np.zeros((0, self.runtime.output_width), np.float32)
        return np.stack(outs)

    def cached_states(self, sender_id: str) -> int | None:
        """How many past states of a conversation the cached (h, c) has read (None: not cached)."""
        with self._lock:
            entry = self._cache.get(sender_id)
        return None if entry is None else entry.num_states

    def forget(self, sender_id: str) -> None:
        """Drop the cached state of one conversation (it is rebuilt when needed)."""
        with self._lock:
            self._cache.pop(sender_id, None)

    def features(self, state: State) -> Features:
        found = self._features.get(state)
        if found is None:
            if len(self._features) >= 50_000:
                self._features.clear()
            found = self._features[state] = self.featurizer.featurize(state)
        return found

    def _current_features(self, conversation: Conversation, current: State) -> Features:
        if self.use_intent_ranking and conversation.state_message.get("intent_ranking"):
            return self.featurizer.featurize(current, conversation.state_message)
        return self.features(current)

    # -- the model file --------------------------------------------------------------------------

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {f"model.{k}": v.copy() for k, v in self.runtime.weights.items()}
        tensors["trained"] = self.trained.astype(np.uint8)
        meta = {
            "config": asdict(self.config),
            "featurizer": self.featurizer.to_meta(),
            "cache_size": self.cache_size,
            "use_intent_ranking": self.use_intent_ranking,
            "priority": self.priority,
            "masks": self.masks.to_meta(),
        }
        if isinstance(self.runtime, EnsembleTrackerRuntime):
            meta["ensemble_size"] = len(self.runtime.members)
        return tensors, meta

    @classmethod
    def from_export(cls, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> LSTMPolicy:
        """The policy from a model file's arrays and metadata; no torch involved."""
        config = TrackerConfig(**meta["config"])
        weights = {
            k[len("model.") :]: to_numpy(v) for k, v in tensors.items() if k.startswith("model.")
        }
        if "trained" not in tensors:
            raise ModelFileError("LSTM policy: the 'trained' label mask is missing")
        size = meta.get("ensemble_size", 1)  # absent: a file from before ensembles, one tracker
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ModelFileError(
                f"LSTM policy: ensemble_size must be a whole number >= 1, got {size!r}"
            )
        runtime: TrackerRuntime | EnsembleTrackerRuntime
        if size > 1:
            parts = split_members(weights, size, "LSTM tracker")
            runtime = EnsembleTrackerRuntime([TrackerRuntime(config, part) for part in parts])
        else:
            runtime = TrackerRuntime(config, weights)
        featurizer = StateFeaturizer.from_meta(meta["featurizer"])
        trained = to_numpy(tensors["trained"])
        for what, got, want in (
            ("features", featurizer.num_features, config.num_features),
            ("labels", featurizer.num_labels, config.num_labels),
            ("labels of the 'trained' mask", trained.shape, (config.num_labels,)),
        ):
            if got != want:
                raise ModelFileError(
                    f"LSTM policy: the featurizer's {what} ({got}) do not match the tracker's "
                    f"settings ({want})"
                )
        return cls(
            runtime,
            featurizer,
            trained,
            cache_size=int(meta.get("cache_size", DEFAULT_CACHE_SIZE)),
            use_intent_ranking=bool(meta.get("use_intent_ranking", True)),
            priority=int(meta.get("priority", 1)),
            masks=ActionMasks.from_meta(meta.get("masks") or {}),
        )


def _same_conversation(entry: _Entry, conversation: Conversation) -> bool:
    """Whether the cached entry was made from the start of this conversation's events, and no
    event since has rewritten its past states (folded form turns are handled by rolling back)."""
    events = conversation.events
    m = entry.num_events
    if len(events) < m:
        return False
    if m and identity(events[m - 1]) != entry.last_event:
        return False  # another conversation under the same id, or a changed store
    return not any(e.get("event") in _REWRITING for e in events[m:])


def step_features(steps: Sequence[Features]) -> tuple[np.ndarray, np.ndarray]:
    """One conversation's feature steps as padded arrays: indices (T, K) and values (T, K)."""
    K = max((len(i) for i, _ in steps), default=1) or 1
    idx = np.zeros((len(steps), K), np.int64)
    val = np.zeros((len(steps), K), np.float32)
    for t, (i, v) in enumerate(steps):
        idx[t, : len(i)] = i
        val[t, : len(v)] = v
    return idx, val


def batch_features(sequences: Sequence[Sequence[Features]]) -> tuple[Any, Any]:
    """Feature sequences as padded torch tensors, for training: indices (B, T, K), values
    (B, T, K). Imports torch: training only."""
    import torch

    T = max(len(s) for s in sequences)
    K = max((len(f[0]) for s in sequences for f in s), default=1) or 1
    idx = np.zeros((len(sequences), T, K), np.int64)
    val = np.zeros((len(sequences), T, K), np.float32)
    for b, seq in enumerate(sequences):
        for t, (i, v) in enumerate(seq):
            idx[b, t, : len(i)] = i
            val[b, t, : len(v)] = v
    return torch.from_numpy(idx), torch.from_numpy(val)
