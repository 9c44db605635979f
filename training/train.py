"""Training a whole project into one model file: the NLU model and the dialogue policies."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from chatbot.agent import TrainedModel
from chatbot.nlu.duckling import duckling_from_pipeline
from chatbot.nlu.lookup_extractor import LookupEntityExtractor, extractor_for
from chatbot.nlu.model import NLUModel
from chatbot.project.domain import ACTION_LISTEN
from chatbot.project.domain_reader import domain_to_dict
from chatbot.project.project import Project
from training.dialogue import check_policy_params, policy_configs, train_policies
from training.lstm import make_lstm_trainer, settings_from_config
from training.nlu.pipeline import settings_from_pipeline

logger = logging.getLogger(__name__)


def fingerprint(project: Project) -> str:
    """A hash of everything training reads, so a model can say what it was trained on."""
    digest = hashlib.sha256()
    digest.update(json.dumps(domain_to_dict(project.domain), sort_keys=True, default=str).encode())
    for item in (*project.nlu.examples, *project.stories, *project.rules):
        digest.update(repr(item).encode())
    digest.update(repr(project.config).encode())
    return digest.hexdigest()


def check_config(project: Project) -> None:
    """Every setting of config.yml, checked before anything trains: a mistake in the last
    policy's settings is reported at once, not after the NLU model has trained."""
    if project.nlu.examples:
        settings_from_pipeline(project.config.pipeline)
    duckling_from_pipeline(project.config.pipeline)
    for kind, config in policy_configs(project.config.policies, notices=False):
        if kind == "lstm":
            settings_from_config(config)
        else:
            check_policy_params(kind, config)


def train_project(
    project: Project,
    *,
    seed: int = 42,
    show_progress: bool = True,
    augmentation: int | None = None,
    nlu: bool = True,
    core: bool = True,
) -> TrainedModel:
    """The project's NLU and policies, trained. ``augmentation``: the LSTM policies'
    ``augmentation_factor`` whatever their config says (``chatbot train --augmentation``).
    ``nlu=False`` / ``core=False`` (``chatbot train core`` / ``chatbot train nlu``): that part
    is left out; a model without policies predicts only ``action_listen`` (no answer)."""
    if not (nlu or core):
        raise ValueError("train the NLU, the dialogue policies, or both")
    started = time.perf_counter()
    check_config(project)
    if not core:
        parsed = _train_nlu(project, seed=seed, show_progress=show_progress)
        return TrainedModel(
            project.domain,
            [],
            parsed,
            {"fallback_threshold": 0.0, "fallback_action": ACTION_LISTEN},
            _meta(project, started, ["nlu"]),
            duckling_from_pipeline(project.config.pipeline),
        )
    understood = _train_nlu(project, seed=seed, show_progress=show_progress) if nlu else None
    lstm_trainer = make_lstm_trainer(
        seed=seed, show_progress=show_progress, augmentation=augmentation
    )
    policies, ensemble = train_policies(project, lstm_trainer=lstm_trainer)
    parts = ["nlu", "core"] if nlu else ["core"]
    duckling = duckling_from_pipeline(project.config.pipeline) if nlu else None
    return TrainedModel(
        project.domain, policies, understood, ensemble, _meta(project, started, parts), duckling
    )


def _meta(project: Project, started: float, parts: list[str]) -> dict[str, Any]:
    return {
        "trained_at": time.time(),
        "train_seconds": round(time.perf_counter() - started, 3),
        "fingerprint": fingerprint(project),
        "language": project.config.language,
        "project": project.root.name,
        "parts": parts,
    }


def _train_nlu(
    project: Project, *, seed: int, show_progress: bool
) -> NLUModel | LookupEntityExtractor | None:
    nlu: NLUModel | LookupEntityExtractor | None = None
    if project.nlu.examples:
        from training.nlu.trainer import train_nlu

        nlu = train_nlu(
            project.nlu, project.config.pipeline, seed=seed, show_progress=show_progress
        )
    else:  # end-to-end stories: entities from lookup tables and regexes, if there are any
        nlu = extractor_for(project.nlu, list(project.domain.entities), project.config.pipeline)
    return nlu


def train_to_file(
    project: Project,
    out: Path,
    *,
    seed: int = 42,
    show_progress: bool = True,
    augmentation: int | None = None,
    nlu: bool = True,
    core: bool = True,
) -> TrainedModel:
    model = train_project(
        project,
        seed=seed,
        show_progress=show_progress,
        augmentation=augmentation,
        nlu=nlu,
        core=core,
    )
    model.to_file(out)
    return model
