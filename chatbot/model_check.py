"""Checks of a model file's content before its parts are built from it: the metadata has the
entries every model we write has, and every weight is a number. A file that passes its checksum
may still be damaged this way (written by hand, by another tool, or saved from a training that
diverged by an older version); it is refused with a ``ModelFileError`` that names the part in
words, never a Python exception's text.

``TrainedModel.from_file`` runs these, builds the parts, and then runs the model once on a first
message (``TrainedModel.check``).

Whether what serves custom actions has the model's is checked whenever a model is served (at
startup, PUT /model, a model server's new model: ``warn_unserved_actions``), with a warning only,
as Rasa does not check it at all: an action server may start later, and a model may be served
before the actions module that goes with it is deployed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.registry import ActionRegistry
from chatbot.errors import ModelFileError
from chatbot.json_input import kind

logger = logging.getLogger(__name__)

# Action names a warning lists at most; the rest are counted.
NAMES_SHOWN = 10

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
        if index.isdigit() and isinstance(policies, list) and int(index) < len(policies):
            entry = policies[int(index)]
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


def warn_unserved_actions(registry: ActionRegistry) -> None:
    """Warn once per model served where its domain's custom actions (``actions:``) have nothing
    to run them: the in-process actions module does not register some, or no action endpoint is
    configured. Otherwise the server starts without a word, and every turn that reaches such an
    action fails with "not found in the actions module". An action server (``url:``) is not
    asked: it may start after this server."""
    executor = registry.executor
    if executor is None:
        custom = registry.custom_actions()
        if custom:
            logger.warning(
                "the model's domain lists custom actions (%s) but no action endpoint is "
                "configured: every turn that runs one will fail; configure one in endpoints.yml: "
                "'action_endpoint: {url: http://localhost:5055/webhook}' (a rasa-sdk action "
                "server) or 'action_endpoint: {actions_module: actions}' (the project's actions, "
                "run in this process)",
                names_of(custom),
            )
    elif isinstance(executor, InProcessExecutor):
        registered = executor.action_names
        missing = [name for name in registry.custom_actions() if name not in registered]
        if missing:
            logger.warning(
                "the model's domain needs custom actions that the actions module '%s' of %s "
                "(endpoints.yml action_endpoint) does not register: %s; every turn that runs one "
                "will fail (add them to the module, or serve the model with the project it was "
                "trained from)",
                executor.module,
                executor.project_dir,
                names_of(missing),
            )


def names_of(names: Sequence[str]) -> str:
    """``names`` for a log line: the first few, then how many more."""
    shown = ", ".join(names[:NAMES_SHOWN])
    rest = len(names) - NAMES_SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown
