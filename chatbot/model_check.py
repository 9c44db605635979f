"""Checks of a model file's content before its parts are built from it: the metadata has the
entries every model we write has, and every weight is a number. A file that passes its checksum
may still be damaged this way (written by hand, by another tool, or saved from a training that
diverged by an older version); it is refused with a ``ModelFileError`` that names the part in
words, never a Python exception's text.

``TrainedModel.from_file`` runs these, builds the parts, and then runs the model once on a first
message (``TrainedModel.check``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from chatbot.errors import ModelFileError
from chatbot.json_input import kind
from chatbot.ranges import whole_number

# The entries every model file has (``TrainedModel.to_file`` writes them all), and what each is.
ENTRIES = {
    "domain": "domain",
    "policies": "list of dialogue policies",
    "nlu": "NLU entry",  # null where the model has none
}


def check_layout(meta: Mapping[str, Any], source: str) -> None:
    """The metadata's entries are there and of the right kind (the parts' own content is checked
    as each part is built)."""
    for key, what in ENTRIES.items():
        if key not in meta:
            raise ModelFileError(
                f"{source}: the model has no {what} (its metadata lacks '{key}'); retrain it"
            )
    if not isinstance(meta["domain"], dict):
        raise ModelFileError(
            f"{source}: the model's domain must be a JSON object, found {kind(meta['domain'])}; "
            "retrain it"
        )
    policies = meta["policies"]
    if not isinstance(policies, list):
        raise ModelFileError(
            f"{source}: the model's list of dialogue policies must be a JSON list, found "
            f"{kind(policies)}; retrain it"
        )
    for index, entry in enumerate(policies):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
            raise ModelFileError(
                f"{source}: the model's policy {index + 1} has no name; retrain it"
            )
    if meta["nlu"] is not None and not isinstance(meta["nlu"], dict):
        raise ModelFileError(
            f"{source}: the model's NLU entry must be a JSON object or null, found "
            f"{kind(meta['nlu'])}; retrain it"
        )


def check_weights(meta: Mapping[str, Any], tensors: Mapping[str, np.ndarray], source: str) -> None:
    """Every weight is a finite number: a NaN or infinite weight (a training that diverged)
    makes every confidence NaN, and the bot would answer nothing."""
    for name, array in tensors.items():
        if array.dtype.kind in "fc" and not bool(np.isfinite(array).all()):
            raise ModelFileError(
                f"{source}: {part_of(name, meta)} has weights that are not numbers (NaN or "
                f"infinite, in {name}): its training diverged; retrain it with a lower "
                "learning_rate"
            )


def part_of(tensor: str, meta: Mapping[str, Any]) -> str:
    """The part of the model a tensor belongs to, in words ("the NLU model", "the policy
    LSTMPolicy"), from the prefix ``TrainedModel.to_file`` gives its name."""
    if tensor.startswith("nlu."):
        return "the NLU model"
    if tensor.startswith("policy."):
        index = tensor.split(".", 2)[1]
        policies = meta.get("policies")
        number = whole_number(index)
        if number is not None and isinstance(policies, list) and number < len(policies):
            entry = policies[number]
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                return f"the policy {entry['name']}"
        return "a dialogue policy"
    return "the model"


def damage(exc: BaseException) -> str:
    """What an exception raised while a part was built from the metadata says is wrong, in
    words: a ValueError's own text (the parts' checks word theirs: "a memorized entry is a list
    of states and an action's name"), a missing entry by its name, Python's other complaints as
    a wrong kind of value."""
    if isinstance(exc, KeyError):
        return f"its entry {exc.args[0]!r} is missing" if exc.args else "an entry is missing"
    if isinstance(exc, ValueError) and str(exc).strip():
        return "; ".join(line for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, IndexError):
        return "a list in it is too short"
    return "a value in it is of the wrong kind"  # TypeError, AttributeError
