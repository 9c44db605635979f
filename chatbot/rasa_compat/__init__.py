"""Rasa's module names for a Rasa project's own code, where Rasa is not installed.

A Rasa 3 project's custom connectors (``connectors.rasa_compat``), custom NLU components
(``chatbot.rasa_compat.engine``, ``chatbot.rasa_compat.nlu``), policies (``.core``) and slot types
(``.slots``) import classes from Rasa. ``provide``
makes the names they import point at ours, only where no ``rasa`` package is installed (with Rasa
installed its own classes are used) and only once a project names such code. The modules we put in
``sys.modules`` carry ``PROVIDED_MARK`` so that a later ``provide`` adds to them."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Mapping

PROVIDED_MARK = "__chatbot_provided__"


def rasa_installed() -> bool:
    """Whether a ``rasa`` package other than ours is importable."""
    module = sys.modules.get("rasa")
    if module is not None:
        return not getattr(module, PROVIDED_MARK, False)
    try:
        return importlib.util.find_spec("rasa") is not None
    except (ImportError, ValueError):  # a broken ``rasa`` of someone else's
        return True


def package(name: str) -> types.ModuleType:
    """An empty package module of ours (its submodules are found in ``sys.modules``)."""
    made = types.ModuleType(name, "provided by chatbot for a Rasa project's code")
    made.__path__ = []
    setattr(made, PROVIDED_MARK, True)
    return made


def provide(modules: Mapping[str, types.ModuleType]) -> bool:
    """Make each ``name -> module`` importable (with empty packages for parents that are not
    there yet); False, and nothing done, where Rasa itself is installed. A name already provided
    is kept (the same classes for every part of a project)."""
    if rasa_installed():
        return False
    for name, module in modules.items():
        setattr(module, PROVIDED_MARK, True)
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if prefix not in sys.modules:
                sys.modules[prefix] = module if prefix == name else package(prefix)
            if depth > 1:
                parent = sys.modules[".".join(parts[: depth - 1])]
                if not hasattr(parent, parts[depth - 1]):
                    setattr(parent, parts[depth - 1], sys.modules[prefix])
    return True


# What a custom NLU component or policy may import from Rasa, and from which of our modules.
# The names: a tuple of them, or the name of the module's collection of them (every one).
COMPONENT_MODULES: dict[str, tuple[str, tuple[str, ...] | str]] = {
    "rasa.engine.graph": ("engine", ("GraphComponent", "ExecutionContext")),
    "rasa.engine.storage.resource": ("engine", ("Resource",)),
    "rasa.engine.storage.storage": ("engine", ("ModelStorage",)),
    "rasa.engine.storage.local_model_storage": ("engine", ("LocalModelStorage",)),
    "rasa.engine.recipes.default_recipe": ("engine", ("DefaultV1Recipe",)),
    "rasa.shared.nlu.training_data.message": ("nlu", ("Message",)),
    "rasa.shared.nlu.training_data.training_data": ("nlu", ("TrainingData",)),
    "rasa.shared.nlu.constants": ("nlu", "CONSTANTS"),
    "rasa.nlu.constants": ("nlu", ("TOKENS_NAMES",)),
    "rasa.nlu.tokenizers.tokenizer": ("nlu", ("Token", "Tokenizer")),
    "rasa.nlu.extractors.extractor": ("nlu", ("EntityExtractorMixin",)),
    "rasa.nlu.classifiers.classifier": ("nlu", ("IntentClassifier",)),
    # custom policies
    "rasa.core.policies.policy": ("core", ("Policy", "PolicyPrediction", "SupportedData")),
    "rasa.core.constants": ("core", ("POLICY_PRIORITY", "DEFAULT_POLICY_PRIORITY")),
    "rasa.core.featurizers.tracker_featurizers": (
        "core",
        ("TrackerFeaturizer", "MaxHistoryTrackerFeaturizer", "FullDialogueTrackerFeaturizer"),
    ),
    "rasa.shared.core.trackers": ("core", ("DialogueStateTracker",)),
    "rasa.shared.core.generator": ("core", ("TrackerWithCachedStates",)),
    "rasa.shared.core.domain": ("core", ("Domain",)),
    "rasa.shared.core.events": ("core", "EVENT_NAMES"),
    "rasa.shared.core.constants": ("core", "CONSTANTS"),
    "rasa.shared.core.slots": ("slots", "SLOT_NAMES"),
}


def provide_components() -> bool:
    """Make ``COMPONENT_MODULES`` importable (``provide``); whether that was done just now."""
    if rasa_installed() or all(name in sys.modules for name in COMPONENT_MODULES):
        return False  # Rasa's own, or provided already
    from chatbot.rasa_compat import core, engine, nlu, slots

    ours = {"engine": engine, "nlu": nlu, "core": core, "slots": slots}
    modules: dict[str, types.ModuleType] = {}
    for name, (source, exported) in COMPONENT_MODULES.items():
        module = types.ModuleType(name, "provided by chatbot for custom components and policies")
        names = getattr(ours[source], exported) if isinstance(exported, str) else exported
        for attribute in names:
            setattr(module, attribute, getattr(ours[source], attribute))
        modules[name] = module
    return provide(modules)
