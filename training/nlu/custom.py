"""Training a pipeline's custom NLU components (``chatbot.nlu.custom``) as Rasa trains them.

In pipeline order, each component is made with ``create`` (its default config updated with
config.yml's settings), trained where it is trainable (``train(training_data)``, which writes what
it learnt to its model storage), and passes the training data on through
``process_training_data``, so a later component sees what an earlier one added. Then the files of
every component's storage are read into the model, and the components are loaded from them as a
served model loads them (``CustomComponents.load``): what training hands back is what serving
gets.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ConfigError, TrainingError
from chatbot.nlu.custom import (
    CustomComponent,
    CustomComponents,
    component_class,
    is_custom_name,
    is_trainable,
    message_for,
)
from chatbot.project.config import ComponentConfig
from chatbot.project.nlu_json import entity_json
from chatbot.project.training_data import NLUData
from chatbot.rasa_compat.loading import config_of, files_in, module_digest

logger = logging.getLogger(__name__)

# Pipeline names that prepare a message for the classifiers (tokenizers, language models,
# featurizers): a custom component after only these runs before our model.
PREPARING = {
    "WhitespaceTokenizer",
    "SpacyTokenizer",
    "MitieTokenizer",
    "JiebaTokenizer",
    "LanguageModelTokenizer",
    "ConveRTTokenizer",
    "SpacyNLP",
    "MitieNLP",
    "HFTransformersNLP",
    "SpacyFeaturizer",
    "MitieFeaturizer",
    "ConveRTFeaturizer",
    "LanguageModelFeaturizer",
    "RegexFeaturizer",
    "LexicalSyntacticFeaturizer",
    "CountVectorsFeaturizer",
}


def folders_of(component: ComponentConfig) -> list[Path]:
    """Where a component's module is looked for: the folder of config.yml, then the working
    directory (Rasa's)."""
    found = [Path(component.origin.file).resolve().parent] if component.origin.file else []
    return list(dict.fromkeys([*found, Path.cwd()]))


def plan(pipeline: Sequence[ComponentConfig]) -> list[CustomComponent]:
    """The pipeline's custom components, each imported and checked (``ConfigError`` naming
    config.yml's line otherwise), in order, with whether it runs before our model."""
    planned = []
    model_seen = False
    for index, component in enumerate(pipeline):
        if not is_custom_name(component.name):
            model_seen = model_seen or component.name not in PREPARING
            continue
        found = component_class(component.name, component.origin.prefix, folders_of(component))
        params = {k: v for k, v in component.params.items() if k != "name"}
        planned.append(
            CustomComponent(component.name, params, not model_seen, index, is_trainable(found))
        )
    return planned


def training_data(data: NLUData) -> Any:
    """The project's NLU data as Rasa's ``TrainingData``: one message per example (text, intent,
    ``intent_response_key`` for a retrieval intent, entities, tokens), synonyms, regexes and
    lookup tables."""
    from chatbot.rasa_compat.nlu import TrainingData

    examples = []
    for example in data.examples:
        message = message_for(example.text)
        intent, _, key = example.intent.partition("/")
        message.set("intent", intent)
        if key:
            message.set("intent_response_key", example.intent)
        if example.entities:
            message.set("entities", [entity_json(e) for e in example.entities])
        examples.append(message)
    return TrainingData(
        examples,
        entity_synonyms=dict(data.synonyms),
        regex_features=[{"name": r.name, "pattern": r.pattern} for r in data.regexes],
        lookup_tables=[{"name": t.name, "elements": list(t.elements)} for t in data.lookups],
    )


def train_components(pipeline: Sequence[ComponentConfig], data: NLUData) -> CustomComponents | None:
    """The pipeline's custom components, trained on ``data`` and loaded as a served model loads
    them; None where the pipeline has none. A component that fails is a ``TrainingError`` naming
    it and config.yml's line."""
    planned = plan(pipeline)
    if not planned:
        return None
    from chatbot.rasa_compat.engine import ExecutionContext, ModelStorage, Resource

    where = {index: component.origin.prefix for index, component in enumerate(pipeline)}
    folder = next((str(folders_of(c)[0]) for c in pipeline if c.origin.file), None)
    with tempfile.TemporaryDirectory(prefix="chatbot-train-components-") as scratch:
        storage = ModelStorage(Path(scratch))
        examples = training_data(data)
        for component in planned:
            found = component_class(component.name, where[component.index])
            label = f"{where[component.index]}custom NLU component '{component.name}'"
            step = "create"
            try:
                made = found.create(
                    config_of(found, component.params),
                    storage,
                    Resource(component.resource_name),
                    ExecutionContext(node_name=f"train_{component.resource_name}"),
                )
                if component.trainable:
                    step = "train"
                    made.train(examples)
                if callable(getattr(made, "process_training_data", None)):
                    step = "process_training_data"
                    examples = made.process_training_data(examples) or examples
            except (ConfigError, TrainingError):
                raise
            except Exception as exc:
                logger.debug("%s failed", label, exc_info=True)
                raise TrainingError(
                    f"{label}: {step}() failed: {type(exc).__name__}: {exc}"
                ) from exc
            done = "trained" if component.trainable else "made (not trainable)"
            logger.info("custom NLU component %s %s", component.name, done)
        files = {
            component.resource_name: files_in(storage.folder(Resource(component.resource_name)))
            for component in planned
        }
    files = {resource: content for resource, content in files.items() if content}
    return CustomComponents.load(planned, files, folder)


def custom_sources(
    entries: Sequence[ComponentConfig],
    load: Callable[[str, str, Sequence[Path]], type[Any]] = component_class,
) -> list[str]:
    """A digest of each custom component's (or, with ``load=policy_class``, policy's) module
    source, in config order ("unreadable" for one that cannot be read), for the fingerprints of
    ``training.reuse``: editing a component's code trains its part again, as editing the data
    does. Only the module that defines the class is read, not the modules it imports."""
    digests = []
    for entry in entries:
        if not is_custom_name(entry.name):
            continue
        module = entry.name.rpartition(".")[0]
        try:
            digests.append(module_digest(load(entry.name, entry.origin.prefix, folders_of(entry))))
        except (ConfigError, OSError):
            digests.append(f"unreadable:{module}")
    return digests
