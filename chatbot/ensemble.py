"""What an ensemble's members mean together: the log of their mean probabilities, and how a
model file names each member's tensors (``ensemble.<i>.<name>``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chatbot.errors import ModelFileError
from chatbot.ranges import whole_number

PREFIX = "ensemble"  # member i's tensors are named "ensemble.<i>.<name>" in a model file


def log_mean_softmax(logits: Sequence[np.ndarray]) -> np.ndarray:
    """The log of the mean of softmax(x) over the last axis, for each member's scores x (all of
    one shape), in float64. By log-sum-exp: a class every member finds very unlikely keeps a
    finite score, so that a mask which leaves only such classes still ranks them."""
    z = np.stack([np.asarray(x, np.float64) for x in logits])
    z -= z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # each member's log-softmax
    top = log_probs.max(axis=0)
    return np.asarray(top + np.log(np.exp(log_probs - top).mean(axis=0)))


def join_members(members: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The members' state dicts as one, each name prefixed with ``ensemble.<member's index>.``."""
    return {
        f"{PREFIX}.{i}.{name}": value
        for i, weights in enumerate(members)
        for name, value in weights.items()
    }


def split_members(
    weights: Mapping[str, np.ndarray], count: int, owner: str
) -> list[dict[str, np.ndarray]]:
    """``count`` members' state dicts from ``ensemble.<i>.<name>`` tensors (``join_members``'s
    inverse). A tensor outside every member is a ``ModelFileError`` naming ``owner`` (what the
    ensemble is, for the message) and the first few such tensors."""
    members: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
    strays = []
    for key, value in weights.items():
        head, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        number = whole_number(index)
        if head == PREFIX and number is not None and number < count and name:
            members[number][name] = value
        else:
            strays.append(key)
    if strays:
        raise ModelFileError(
            f"{owner} ensemble of {count} members: tensors outside every member: "
            + ", ".join(sorted(strays)[:5])
            + (f" and {len(strays) - 5} more" if len(strays) > 5 else "")
        )
    return members
