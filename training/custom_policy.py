"""Training a project's custom policy (``chatbot.dialogue.custom_policy``) as Rasa trains it:
``create`` with its default config updated with config.yml's, then ``train`` with the stories
and/or rules (its ``supported_data()``) as Rasa's trackers and the domain; what it writes to its
model storage goes into the model, and the policy is loaded from it as a served model loads it."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.custom_policy import CustomPolicy, policy_class, resource_name
from chatbot.errors import ConfigError, TrainingError
from chatbot.project.config import ComponentConfig, ProjectConfig
from chatbot.project.domain import Domain
from chatbot.rasa_compat.loading import check_fit, config_of, files_in
from training.nlu.custom import folders_of

logger = logging.getLogger(__name__)


def check_custom_code(config: ProjectConfig) -> None:
    """The config's custom components and policies against its language and their packages
    (``check_fit``), as Rasa checks them before training."""
    from chatbot.nlu.custom import component_class, is_custom_name

    for entries, load, what in (
        (config.pipeline, component_class, "custom NLU component"),
        (config.policies, policy_class, "custom policy"),
    ):
        for entry in entries:
            if is_custom_name(entry.name):
                where = entry.origin.prefix
                found = load(entry.name, where, folders_of(entry))
                check_fit(found, f"{where}{what} '{entry.name}'", config.language)


def trackers(conversations: Any, domain: Domain, *, rules: bool) -> list[Any]:
    """Training conversations as Rasa's ``TrackerWithCachedStates``."""
    from chatbot.rasa_compat.core import TrackerWithCachedStates

    made = []
    for conversation in conversations:
        tracker = TrackerWithCachedStates(
            Conversation(conversation.name, domain, conversation.events)
        )
        tracker.is_rule_tracker = rules
        made.append(tracker)
    return made


def train_custom_policy(
    config: ComponentConfig, index: int, data: Any, domain: Domain
) -> CustomPolicy:
    """The policy ``config`` names, trained on ``data`` (``training.dialogue.DialogueData``).
    ``TrainingError`` naming it and config.yml's line where its code fails."""
    from chatbot.rasa_compat.core import Domain as RasaDomain
    from chatbot.rasa_compat.core import SupportedData
    from chatbot.rasa_compat.engine import ExecutionContext, ModelStorage, Resource

    where = config.origin.prefix
    found = policy_class(config.name, where, folders_of(config))
    params = {k: v for k, v in config.params.items() if k != "name"}
    supported = found.supported_data() if callable(getattr(found, "supported_data", None)) else None
    wanted = getattr(supported, "name", SupportedData.ML_DATA.name)
    training = []
    if wanted in ("ML_DATA", "ML_AND_RULE_DATA"):
        training += trackers(data.stories, domain, rules=False)
    if wanted in ("RULE_DATA", "ML_AND_RULE_DATA"):
        training += trackers(data.rules, domain, rules=True)
    name = resource_name(index, config.name)
    label = f"{where}custom policy '{config.name}'"
    step = "create"
    with tempfile.TemporaryDirectory(prefix="chatbot-train-policy-") as scratch:
        storage = ModelStorage(Path(scratch))
        try:
            made = found.create(
                config_of(found, params),
                storage,
                Resource(name),
                ExecutionContext(node_name=f"train_{name}"),
            )
            step = "train"
            made.train(training, RasaDomain(domain))
        except (ConfigError, TrainingError):
            raise
        except Exception as exc:
            logger.debug("%s failed", label, exc_info=True)
            raise TrainingError(f"{label}: {step}() failed: {type(exc).__name__}: {exc}") from exc
        files = files_in(storage.folder(Resource(name)))
    logger.info("custom policy %s trained on %d trackers", config.name, len(training))
    folder = str(folders_of(config)[0])
    return CustomPolicy.load(config.name, params, index, {name: files} if files else {}, folder)
