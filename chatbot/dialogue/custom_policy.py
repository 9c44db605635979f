"""A Rasa 3 project's custom policy (``- name: addons.policies.MyPolicy`` under ``policies:``) as
one of ours.

The class is the project's (Rasa's ``Policy`` interface, imported from the folder of config.yml or
the working directory; Rasa's names are ours where Rasa is not installed, ``chatbot.rasa_compat``).
Training (``training.dialogue``) calls ``create`` and ``train`` with the stories (and the rules,
as its ``supported_data()`` asks) as Rasa's trackers; what it writes to its model storage is kept
in the model file, and a served model calls ``load``. Each turn it is asked
``predict_action_probabilities`` with a view of the conversation as Rasa's tracker and of the
domain as Rasa's; its most likely action (of those not excluded) competes with the other
policies' by confidence, then by its ``priority``, as in Rasa's ensemble. Events it predicts
with the action (``PolicyPrediction.events``) are logged before the action, which runs with them
applied (``Prediction.events``; ``chatbot.processor``), as Rasa's processor applies them.

A policy that raises, or answers with probabilities that are not one number per action of the
domain, says nothing that turn (the others answer), with an error in the log (its traceback
once); events that are not valid events are left out (logged), its action stands.
A model with a custom policy runs its code when it is loaded: serve only models you trust.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import weakref
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event, InvalidEvent, validate_events
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.errors import ConfigError, ModelFileError
from chatbot.rasa_compat.loading import (
    files_to_tensors,
    load_instance,
    project_class,
    served_class,
    tensors_to_files,
    unpack,
)

logger = logging.getLogger(__name__)

META_KEY = "rasa_class"
TENSOR_PREFIX = "files."


def policy_class(name: str, where: str = "", folders: Sequence[Path] = ()) -> type[Any]:
    """The class a ``policies:`` entry's ``module.Class`` names: a Rasa policy (a subclass of
    ``rasa.core.policies.policy.Policy``, or a graph component with
    ``predict_action_probabilities``). ``ConfigError`` (prefixed with ``where``) otherwise."""
    label = f"{where}custom policy '{name}'"
    found = project_class(name, label, folders)
    if not callable(getattr(found, "predict_action_probabilities", None)):
        raise ConfigError(
            f"{label}: {found.__name__} has no predict_action_probabilities(tracker, domain) "
            "method (a custom policy subclasses rasa.core.policies.policy.Policy)"
        )
    return found


def resource_name(index: int, name: str) -> str:
    return f"policy_{index}_{name.rpartition('.')[2]}"


class CustomPolicy(Policy):
    """A project's policy class, loaded, as one of our policies."""

    def __init__(
        self,
        class_path: str,
        params: Mapping[str, Any],
        index: int,
        instance: Any,
        files: dict[str, dict[str, bytes]],
        folder: str | None,
        storage_dir: Path | None = None,
    ) -> None:
        self.class_path = class_path
        self.params = dict(params)
        self.index = index
        self.instance = instance
        self.files = files
        self.folder = folder
        self.name = class_path.rpartition(".")[2]
        self.priority = int(getattr(instance, "priority", params.get("priority", 1)) or 0)
        self._lock = threading.Lock()  # one prediction at a time, as Rasa runs it
        self._failures = 0
        self._domains: dict[int, Any] = {}  # our domain's id -> Rasa's view of it
        if storage_dir is not None:
            weakref.finalize(self, shutil.rmtree, storage_dir, ignore_errors=True)

    def _domain(self, conversation: Conversation) -> Any:
        from chatbot.rasa_compat.core import Domain

        key = id(conversation.domain)
        view = self._domains.get(key)
        if view is None or view.ours is not conversation.domain:
            view = self._domains[key] = Domain(conversation.domain)
        return view

    def predict(
        self, conversation: Conversation, excluded: Set[str] = frozenset()
    ) -> Prediction | None:
        from chatbot.rasa_compat.core import DialogueStateTracker

        domain = self._domain(conversation)
        try:
            with self._lock:
                made = self.instance.predict_action_probabilities(
                    DialogueStateTracker(conversation), domain, rule_only_data=None
                )
            probabilities = [float(p) for p in made.probabilities]
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", exc_info=True)
            return None
        if len(probabilities) != domain.num_actions or not all(
            math.isfinite(p) for p in probabilities
        ):
            self._failed(
                f"it gave {len(probabilities)} probabilities for the domain's "
                f"{domain.num_actions} actions, or some that are no numbers"
            )
            return None
        events = self._events(getattr(made, "events", None))
        best, confidence = None, 0.0
        for name, probability in zip(domain.action_names_or_texts, probabilities, strict=True):
            if probability > confidence and name not in excluded:
                best, confidence = name, probability
        if best is None:
            return None
        priority = getattr(made, "policy_priority", None)
        return Prediction(
            best,
            min(confidence, 1.0),
            self.name,
            int(priority) if isinstance(priority, int) else self.priority,
            hide_rule_turn=bool(getattr(made, "hide_rule_turn", False)),
            events=events,
        )

    def _events(self, made: Any) -> tuple[Event, ...]:
        """A prediction's events as ours (Rasa's event objects, or their JSON); none, with an
        error in the log, where they are not valid events."""
        if not made:
            return ()
        try:
            found = [e.as_dict() if callable(getattr(e, "as_dict", None)) else e for e in made]
            return tuple(
                {k: v for k, v in e.items() if not (k == "timestamp" and v is None)}
                for e in validate_events(found, f"custom policy '{self.class_path}' events")
            )
        except (InvalidEvent, TypeError, AttributeError) as exc:
            self._failed(f"its events are not valid: {exc}; its action stands without them")
            return ()

    def _failed(self, why: str, *, exc_info: bool = False) -> None:
        self._failures += 1
        logger.error(
            "custom policy '%s' failed to predict (%s); it says nothing this turn%s",
            self.class_path,
            why,
            "" if self._failures == 1 else f" ({self._failures} failures so far)",
            exc_info=exc_info and self._failures == 1,
        )

    # ----------------------------------------------------------------------------- model files

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = {
            META_KEY: self.class_path,
            "params": self.params,
            "index": self.index,
            "folder": self.folder,
            "files": {resource: sorted(files) for resource, files in self.files.items()},
            "priority": self.priority,
        }
        return files_to_tensors(TENSOR_PREFIX, self.files), meta

    @classmethod
    def from_export(cls, tensors: dict[str, Any], meta: dict[str, Any]) -> CustomPolicy:
        try:
            class_path = str(meta[META_KEY])
            params = dict(meta["params"])
            index = int(meta["index"])
            folder = meta.get("folder")
            files = tensors_to_files(TENSOR_PREFIX, tensors, meta.get("files") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"the model's custom policy is damaged ({exc!r})") from exc
        return cls.load(
            class_path, params, index, files, folder if isinstance(folder, str) else None
        )

    @classmethod
    def load(
        cls,
        class_path: str,
        params: Mapping[str, Any],
        index: int,
        files: dict[str, dict[str, bytes]],
        folder: str | None,
        model_id: str | None = None,
    ) -> CustomPolicy:
        """The policy ``load``ed from its stored files, as a served model loads it."""
        from chatbot.rasa_compat.engine import ModelStorage

        found = served_class(policy_class, class_path, folder)
        root = unpack(files)
        try:
            instance = load_instance(
                found,
                params,
                ModelStorage(root),
                resource_name(index, class_path),
                f"custom policy '{class_path}'",
                model_id,
            )
        except ModelFileError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(class_path, params, index, instance, files, folder, root)


def is_loaded_policy(meta: Mapping[str, Any]) -> bool:
    """Whether a model file's policy entry is a custom policy's."""
    return isinstance(meta, Mapping) and META_KEY in meta
