"""A Rasa 3 project's custom NLU components (``- name: addons.sentiment.Analyzer`` in config.yml),
run beside the BiLSTM-CRF as Rasa runs them in its pipeline.

A component is a class of the project (Rasa's ``GraphComponent`` interface, imported from the
folder of config.yml or the working directory, as Rasa imports it). Where Rasa is not installed,
the names it imports (``rasa.engine.graph``, ``rasa.shared.nlu.training_data.message`` ...) are
ours (``chatbot.rasa_compat``). Training (``training.nlu.custom``) calls ``create``, ``train``
where it is trainable and ``process_training_data``; what it writes to its model storage is kept
in the model file (each file as bytes, in the tensors), and a served model calls ``load`` with
those files and ``process`` on each message:

- a component listed before every intent classifier and entity extractor of the pipeline runs
  before our model: it sees the text (and its ``text_tokens``), and may change the text our model
  then reads;
- one listed after runs after: it sees the intent, ranking and entities, and may change them or
  add properties (``message.set(key, value, add_to_output=True)``), which the parse data carries.

A component that raises on a message is logged (its traceback once) and the message goes on as it
was before it: one broken component does not stop a bot from answering. A model file with custom
components imports and runs their code when it is loaded, as Rasa does: load only models you
trust, with their code beside them.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.errors import ConfigError, ModelFileError
from chatbot.nlu.tokenizer import tokenize
from chatbot.nlu.types import ParseResult
from chatbot.rasa_compat.loading import (
    files_to_tensors,
    load_instance,
    project_class,
    served_class,
    tensors_to_files,
    unpack,
)

logger = logging.getLogger(__name__)

TENSOR_PREFIX = "custom."
META_KEY = "custom_components"
# Component types that are no NLU component of a message (refused), and those whose output our
# model does not read (run, with a notice).
REFUSED_TYPES = {
    "MODEL_LOADER": "a language-model loader: no pretrained model feeds the BiLSTM-CRF",
    "POLICY_WITHOUT_END_TO_END_SUPPORT": "a policy: list it under policies",
    "POLICY_WITH_END_TO_END_SUPPORT": "a policy: list it under policies",
}
UNREAD_TYPES = {
    "MESSAGE_TOKENIZER": "its tokens are not read by the BiLSTM-CRF, which tokenizes the text",
    "MESSAGE_FEATURIZER": "its features are not read by the BiLSTM-CRF, which learns its own",
}
_noticed: set[tuple[str, str]] = set()
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def is_custom_name(name: str) -> bool:
    """Whether a pipeline name is a module path (``addons.sentiment.Analyzer``), as Rasa names a
    custom component."""
    return bool(_DOTTED.match(name))


@dataclass
class CustomComponent:
    """One custom component of a pipeline: its ``module.Class`` path, its settings (config.yml's
    entry without ``name``), whether it runs before our model, and its place in the pipeline."""

    name: str
    params: dict[str, Any]
    before: bool
    index: int
    trainable: bool = False
    instance: Any = field(default=None, repr=False)
    failures: int = field(default=0, repr=False)
    # One message at a time through a component, as Rasa runs them: parses run in worker
    # threads here, and a project's component need not be thread-safe.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def class_name(self) -> str:
        return self.name.rpartition(".")[2]

    @property
    def resource_name(self) -> str:
        return f"{self.index}_{self.class_name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "before": self.before,
            "index": self.index,
            "trainable": self.trainable,
        }


def component_class(name: str, where: str = "", folders: Sequence[Path] = ()) -> type[Any]:
    """The class a pipeline's ``module.Class`` names (``project_class``), checked to be a
    component of a kind our pipeline can run. ``ConfigError`` (prefixed with ``where``)
    otherwise."""
    label = f"{where}custom NLU component '{name}'"
    found = project_class(name, label, folders)
    if _is_tokenizer(found):
        raise ConfigError(
            f"{label}: it is a tokenizer (a subclass of Rasa's Tokenizer): the BiLSTM-CRF reads "
            "its own tokens; chatbot runs custom intent classifiers, entity extractors and other "
            "message processors"
        )
    for kind in registered_types(found):
        if kind in REFUSED_TYPES:
            raise ConfigError(f"{label}: it is {REFUSED_TYPES[kind]}")
        if kind in UNREAD_TYPES and (name, kind) not in _noticed:
            _noticed.add((name, kind))  # once a process: the class is checked at every step
            logger.info("%s: registered as %s; %s", label, kind, UNREAD_TYPES[kind])
    policy = getattr(sys.modules.get("rasa.core.policies.policy"), "Policy", None)
    if policy is not None and issubclass(found, policy):
        raise ConfigError(f"{label}: it is {REFUSED_TYPES['POLICY_WITHOUT_END_TO_END_SUPPORT']}")
    if not callable(getattr(found, "process", None)):
        raise ConfigError(f"{label}: {found.__name__} has no process(messages) method")
    return found


def _is_tokenizer(found: type) -> bool:
    tokenizer = getattr(sys.modules.get("rasa.nlu.tokenizers.tokenizer"), "Tokenizer", None)
    return tokenizer is not None and issubclass(found, tokenizer)


def registered_types(found: type) -> list[str]:
    """The component types its ``DefaultV1Recipe.register`` names (Rasa's or ours)."""
    registered = _registration(found)
    return [str(getattr(kind, "name", kind)) for kind in getattr(registered, "types", ()) or ()]


def _registration(found: type) -> Any:
    from chatbot.rasa_compat.engine import REGISTRATION_KEY

    return found.__dict__.get(REGISTRATION_KEY)  # its own, not a registered base class's


def is_trainable(found: type) -> bool:
    """Rasa trains a component registered with ``is_trainable=True``; one registered otherwise
    is not trained, and an unregistered one is trained where it has a ``train`` method."""
    registered = _registration(found)
    if registered is not None:
        return bool(getattr(registered, "is_trainable", False))
    return callable(getattr(found, "train", None))


def rasa_tokens(text: str) -> list[Any]:
    """``text``'s tokens as Rasa's ``Token``s, as a tokenizer before a component gives them."""
    from chatbot.rasa_compat.nlu import Token

    return [Token(t.text, t.start, t.end) for t in tokenize(text)]


def message_for(text: str) -> Any:
    """A Rasa ``Message`` of ``text``, with its tokens (``rasa_tokens``)."""
    from chatbot.rasa_compat.nlu import TOKENS_NAMES, Message

    return Message({"text": text, TOKENS_NAMES["text"]: rasa_tokens(text)})


class CustomComponents:
    """A model's custom components, loaded and ready to process messages."""

    def __init__(
        self,
        components: list[CustomComponent],
        files: dict[str, dict[str, bytes]],
        folder: str | None,
        storage_dir: Path,
    ) -> None:
        self.components = components
        self.files = files  # resource name -> relative path -> content
        self.folder = folder  # the project's folder at training: where the code was imported
        # The components' model storage, removed with this object (or at exit).
        weakref.finalize(self, shutil.rmtree, storage_dir, ignore_errors=True)

    # --------------------------------------------------------------------------------- parsing

    def parse(self, text: str, parse: Callable[[str], ParseResult]) -> ParseResult:
        """``parse`` (our model) between the components that run before and after it."""
        from chatbot.rasa_compat.nlu import TOKENS_NAMES

        message = message_for(text)
        for component in self.components:
            if component.before:
                message = self._process(component, message)
        read = message.get("text")
        if not isinstance(read, str):
            read = text
        parsed: dict[str, Any] = dict(parse(read))
        earlier = message.get("entities")
        if isinstance(earlier, list) and earlier:
            parsed["entities"] = [*earlier, *parsed.get("entities", [])]
        for key, value in parsed.items():
            message.set(key, value, add_to_output=True)
        if read != text:  # the tokens of the text our model read
            message.set(TOKENS_NAMES["text"], rasa_tokens(read))
        for component in self.components:
            if not component.before:
                message = self._process(component, message)
        return self._result(message, parsed)

    def _process(self, component: CustomComponent, message: Any) -> Any:
        """The message after ``component.process``; the message as it was where the component
        raised or gave back something else than messages."""
        try:
            data = copy.deepcopy(message.data)
        except Exception:  # something a component keeps that cannot be copied (a lock, a model)
            data = dict(message.data)
        kept = type(message)(data, set(message.output_properties))
        try:
            with component.lock:
                out = component.instance.process([message])
        except Exception as exc:
            component.failures += 1
            logger.error(
                "custom NLU component '%s' failed on a message (%s); the message goes on "
                "without it%s",
                component.name,
                f"{type(exc).__name__}: {exc}",
                "" if component.failures == 1 else f" ({component.failures} failures so far)",
                exc_info=component.failures == 1,
            )
            return kept
        if isinstance(out, list) and out and hasattr(out[0], "data"):
            return out[0]
        if out is None or isinstance(out, list):  # changed in place (Rasa 2's habit)
            return message
        logger.error(
            "custom NLU component '%s' returned %s from process(); it must return the list of "
            "messages: the message goes on without it",
            component.name,
            type(out).__name__,
        )
        return kept

    def _result(self, message: Any, parsed: dict[str, Any]) -> ParseResult:
        """The parse data: the message's output properties, where they are still parse data
        (JSON, an intent object, a list of entity objects); a property the components broke is
        our model's again, with an error in the log."""
        result = message.as_dict(only_output_properties=True)
        result.pop("text_tokens", None)
        for key in list(result):
            problem = _problem(key, result[key])
            if problem is not None:
                logger.error(
                    "a custom NLU component left '%s' unusable (%s): %s",
                    key,
                    problem,
                    "our model's is kept" if key in parsed else "it is left out",
                )
                if key in parsed:
                    result[key] = parsed[key]
                else:
                    del result[key]
        return result

    # ----------------------------------------------------------------------------- model files

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = files_to_tensors(TENSOR_PREFIX, self.files)
        meta = {
            "components": [c.to_json() for c in self.components],
            "folder": self.folder,
            "files": {resource: sorted(files) for resource, files in self.files.items()},
        }
        return tensors, meta

    @classmethod
    def from_export(
        cls, tensors: Mapping[str, Any], meta: Mapping[str, Any], *, model_id: str | None = None
    ) -> CustomComponents:
        """Load the components of ``export``'s output: each imported (from the working
        directory, else the project's folder at training), its files written to a temporary
        model storage, and its ``load`` called. ``ModelFileError`` naming the component where one
        fails."""
        try:
            components = [
                CustomComponent(
                    str(c["name"]),
                    dict(c["params"]),
                    bool(c["before"]),
                    int(c["index"]),
                    bool(c["trainable"]),
                )
                for c in meta["components"]
            ]
            folder = meta.get("folder")
            files = tensors_to_files(TENSOR_PREFIX, tensors, meta.get("files") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"the model's custom NLU components are damaged ({exc!r})"
            ) from exc
        return cls.load(components, files, folder if isinstance(folder, str) else None, model_id)

    @classmethod
    def load(
        cls,
        components: list[CustomComponent],
        files: dict[str, dict[str, bytes]],
        folder: str | None,
        model_id: str | None = None,
    ) -> CustomComponents:
        from chatbot.rasa_compat.engine import ModelStorage

        root = unpack(files)
        storage = ModelStorage(root)
        try:
            for component in components:
                found = served_class(component_class, component.name, folder)
                component.instance = load_instance(
                    found,
                    component.params,
                    storage,
                    component.resource_name,
                    f"custom NLU component '{component.name}'",
                    model_id,
                )
        except ModelFileError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(components, files, folder, root)


def _problem(key: str, value: Any) -> str | None:
    """Why a property is no parse data (None where it is)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"not JSON: {exc}"
    if key == "intent" and not (isinstance(value, dict) and "name" in value):
        return "not an object with a name"
    if key == "entities" and not (
        isinstance(value, list)
        and all(isinstance(e, dict) and isinstance(e.get("entity"), str) for e in value)
    ):
        return "not a list of objects with an entity name"
    return None
