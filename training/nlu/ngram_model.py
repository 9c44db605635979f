"""The TF-IDF n-gram intent model: a class-balanced logistic regression, fitted by L-BFGS.

What scikit-learn's ``TfidfVectorizer`` (binary counts, smooth idf, L2 norm) followed by
``LogisticRegression(class_weight="balanced")`` computes, on the n-gram ids the featurizer already
gives every message, so that serving needs no other vocabulary: inverse document frequencies
``ln((1 + n) / (1 + df)) + 1``, each message's idf vector scaled to unit length, and per-intent
weights and biases minimising the class-weighted mean cross-entropy plus ``l2`` times the squared
weights. The problem is convex, so the result does not depend on the seed; it is fitted once for
all the networks of an ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from training.optim import minimize_lbfgs

MAX_ITERATIONS = 500
# L-BFGS keeps this many pairs of parameter-sized vectors: the fit's memory is about 2 * HISTORY
# times the weights' (float32), 10 MB for a bot of 50 intents and 5,000 n-grams.
HISTORY = 10


class TfidfIntents(NamedTuple):
    weight: np.ndarray  # (ngrams, intents) float32
    idf: np.ndarray  # (ngrams,) float32
    bias: np.ndarray  # (intents,) float32


def fit_tfidf_intents(
    messages: Sequence[np.ndarray], intents: Sequence[int], ngrams: int, labels: int, l2: float
) -> TfidfIntents:
    """Fit on ``messages`` (each a message's unique n-gram ids) labelled with ``intents`` (ids
    below ``labels``). An intent without examples keeps its weights at 0 and a bias that loses."""
    n = len(messages)
    lengths = np.fromiter((len(m) for m in messages), np.int64, n)
    columns = np.concatenate(list(messages)) if n else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(n), lengths)
    df = np.bincount(columns, minlength=ngrams).astype(np.float64)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    values = idf[columns]
    length = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
    values = values / np.maximum(length, 1e-12)[rows]
    x = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, columns])),
        torch.from_numpy(values.astype(np.float32)),
        (n, ngrams),
        check_invariants=True,
    ).coalesce()
    y = torch.as_tensor(np.asarray(intents, np.int64))
    counts = np.bincount(np.asarray(intents, np.int64), minlength=labels).astype(np.float64)
    present = counts > 0
    # class_weight="balanced": every intent weighs as much in the loss, however many examples.
    class_weight = np.where(present, n / (present.sum() * np.maximum(counts, 1)), 0.0)
    weight = torch.zeros(ngrams, labels, requires_grad=True)
    bias = torch.zeros(labels, requires_grad=True)
    absent = torch.from_numpy(~present)
    loss_of = nn.CrossEntropyLoss(weight=torch.from_numpy(class_weight.astype(np.float32)))

    def closure() -> torch.Tensor:
        weight.grad = bias.grad = None
        logits = torch.sparse.mm(x, weight) + bias.masked_fill(absent, -1e4)
        loss = loss_of(logits, y) + l2 * (weight * weight).sum()
        loss.backward()
        return loss

    if n:  # torch.optim.LBFGS's iterations, strong Wolfe line search (training.optim)
        minimize_lbfgs(
            closure,
            [weight, bias],
            max_iter=MAX_ITERATIONS,
            tolerance_grad=1e-6,
            tolerance_change=1e-10,
            history_size=HISTORY,
        )
    with torch.no_grad():
        final_bias = bias.masked_fill(absent, -1e4)
    return TfidfIntents(
        weight.detach().numpy().astype(np.float32),
        idf.astype(np.float32),
        final_bias.numpy().astype(np.float32),
    )
