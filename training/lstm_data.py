"""Training data of the LSTM tracker: sequences to learn from replayed conversations
(``training.replay``), padded batches.

With the whole history (the
default), one conversation is one sequence with a target at each predicted action; with
``max_history`` every target gets its own sequence of the last ``max_history`` states.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from chatbot.conversation.state import State
from chatbot.dialogue.featurizer import Features, StateFeaturizer
from chatbot.dialogue.lstm_policy import batch_features
from training.replay import Steps

logger = logging.getLogger(__name__)

IGNORE = -100  # no target at this step


@dataclass(frozen=True)
class Example:
    features: tuple[Features, ...]  # one per step
    targets: tuple[int, ...]  # label index per step, IGNORE where nothing is learned
    denied: tuple[tuple[int, ...], ...]  # labels that cannot apply, per step


def examples_of(
    conversations: Sequence[Steps],
    featurizer: StateFeaturizer,
    max_history: int | None,
    *,
    dedup: bool = True,
) -> list[Example]:
    cache: dict[State, tuple[Features, tuple[int, ...]]] = {}
    unknown: set[str] = set()

    def step(state: State) -> tuple[Features, tuple[int, ...]]:
        found = cache.get(state)
        if found is None:
            found = cache[state] = (featurizer.featurize(state), featurizer.denied(state))
        return found

    def label(action: str | None) -> int:
        if action is None:
            return IGNORE
        index = featurizer.label_index.get(action)
        if index is None:
            unknown.add(action)
            return IGNORE
        return index

    out: list[Example] = []
    for states, actions in (seq for steps in conversations for seq in steps.sequences):
        done = [step(s) for s in states]
        labels = [label(a) for a in actions]
        if max_history is None:
            if any(t != IGNORE for t in labels):
                out.append(
                    Example(tuple(f for f, _ in done), tuple(labels), tuple(d for _, d in done))
                )
            continue
        for i, target in enumerate(labels):
            if target == IGNORE:
                continue
            lo = max(0, i + 1 - max_history)
            window = done[lo : i + 1]
            targets = (IGNORE,) * (len(window) - 1) + (target,)
            out.append(Example(tuple(f for f, _ in window), targets, tuple(d for _, d in window)))
    if unknown:
        logger.warning(
            "LSTMPolicy: actions not in the domain are not learned: %s", ", ".join(sorted(unknown))
        )
    return list(dict.fromkeys(out)) if dedup else out


@dataclass
class Tensors:
    """Padded examples: idx/val (N, T, K), targets (N, T), denied (N, T, D), lengths (N,)."""

    idx: torch.Tensor
    val: torch.Tensor
    targets: torch.Tensor
    denied: torch.Tensor
    lengths: torch.Tensor

    def take(self, rows: Sequence[int]) -> Tensors:
        index = torch.tensor(rows, dtype=torch.long)
        T = int(self.lengths[index].max())
        return Tensors(
            self.idx[index, :T],
            self.val[index, :T],
            self.targets[index, :T],
            self.denied[index, :T],
            self.lengths[index],
        )

    def batches(self, batch_size: int, rng: random.Random | None) -> Iterator[Tensors]:
        """Minibatches of similar lengths (less padding); shuffled when ``rng`` is given."""
        rows = list(range(len(self.lengths)))
        if rng is not None:
            rng.shuffle(rows)
        lengths = self.lengths.tolist()
        pool = batch_size * 16
        batches: list[list[int]] = []
        for start in range(0, len(rows), pool):
            chunk = sorted(rows[start : start + pool], key=lambda r: lengths[r])
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        if rng is not None:
            rng.shuffle(batches)
        for batch in batches:
            yield self.take(batch)


def tensorize(examples: Sequence[Example], featurizer: StateFeaturizer) -> Tensors:
    idx, val = batch_features([ex.features for ex in examples])
    N, T = idx.shape[:2]
    D = max((len(d) for ex in examples for d in ex.denied), default=0) or 1
    targets = torch.full((N, T), IGNORE, dtype=torch.long)
    # Denied labels, padded with num_labels: a column past the last label, cut off after use.
    denied = torch.full((N, T, D), featurizer.num_labels, dtype=torch.long)
    for n, ex in enumerate(examples):
        targets[n, : len(ex.targets)] = torch.tensor(ex.targets)
        for t, d in enumerate(ex.denied):
            if d:
                denied[n, t, : len(d)] = torch.tensor(d)
    lengths = torch.tensor([len(ex.features) for ex in examples])
    return Tensors(idx, val, targets, denied, lengths)
