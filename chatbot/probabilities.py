"""What an ensemble's members' scores mean together: the log of their mean probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_mean_softmax(logits: Sequence[np.ndarray]) -> np.ndarray:
    """The log of the mean of softmax(x) over the last axis, for each member's scores x (all of
    one shape), in float64. By log-sum-exp: a class every member finds very unlikely keeps a
    finite score, so that a mask which leaves only such classes still ranks them."""
    z = np.stack([np.asarray(x, np.float64) for x in logits])
    z -= z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # each member's log-softmax
    top = log_probs.max(axis=0)
    return np.asarray(top + np.log(np.exp(log_probs - top).mean(axis=0)))
