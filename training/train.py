"""Training a whole project into one model file: the NLU model and the dialogue policies."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatbot.agent import TrainedModel
from chatbot.dialogue.policy import Policy
from chatbot.errors import ModelFileError
from chatbot.nlu.custom import is_custom_name
from chatbot.nlu.duckling import duckling_from_pipeline
from chatbot.nlu.lookup_extractor import LookupEntityExtractor, extractor_for
from chatbot.nlu.model import NLUModel
from chatbot.project.custom_slots import CODE_FOLDER, has_custom_slots
from chatbot.project.domain import ACTION_LISTEN, Domain
from chatbot.project.domain_reader import domain_to_dict
from chatbot.project.project import Project
from chatbot.project.stories import bot_texts_of
from training.custom_policy import check_custom_code
from training.dialogue import check_policy_params, policy_configs, train_policies
from training.lstm_settings import settings_from_config
from training.nlu.pipeline import settings_from_pipeline
from training.parallel import PoliciesInBackground, start_beside, worth_it
from training.reuse import PART_NAMES, part_fingerprints

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
    check_custom_code(project.config)
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
    reuse: Mapping[str, Path] | None = None,
    parallel: bool | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> TrainedModel:
    """The project's NLU and policies, trained. ``augmentation``: the LSTM policies'
    ``augmentation_factor`` whatever their config says (``chatbot train --augmentation``).
    ``nlu=False`` / ``core=False`` (``chatbot train core`` / ``chatbot train nlu``): that part
    is left out; a model without policies predicts only ``action_listen`` (no answer).
    ``reuse``: a part ("nlu", "core") to take from that earlier model file instead of training
    it (``training.reuse.find_reusable`` finds them); one that fails to load is trained.
    ``parallel``: the policies train in a second process while the NLU trains here (None: where
    ``training.parallel.worth_it`` says so; False: one after the other, as
    ``chatbot train --num-threads 1`` asks; True: whenever both parts train).
    ``fingerprints``: the project's ``part_fingerprints`` where the caller made them already
    (for the same seed and augmentation; M of the large-project benchmark: 0.36 s each)."""
    if not (nlu or core):
        raise ValueError("train the NLU, the dialogue policies, or both")
    started = time.perf_counter()
    check_config(project)
    parts = [part for part, wanted in (("nlu", nlu), ("core", core)) if wanted]
    earlier = _Earlier(reuse or {})
    nlu_earlier = earlier.model("nlu") if nlu else None
    core_earlier = earlier.model("core") if core else None
    background: PoliciesInBackground | None = None
    both = nlu and core and nlu_earlier is None and core_earlier is None
    if both and (parallel or (parallel is None and worth_it(project))):
        background = start_beside(project, seed=seed, augmentation=augmentation)
    try:
        understood: NLUModel | LookupEntityExtractor | None = None
        if nlu_earlier is not None:
            understood = nlu_earlier.nlu
        elif nlu:
            understood = _train_nlu(project, seed=seed, show_progress=show_progress)
        policies: list[Policy] = []
        ensemble: dict[str, Any] = {"fallback_threshold": 0.0, "fallback_action": ACTION_LISTEN}
        beside = background.result() if background is not None else None
        if core_earlier is not None:
            policies, ensemble = core_earlier.policies, core_earlier.ensemble
        elif beside is not None:
            policies, ensemble = beside
        elif core:
            policies, ensemble = train_core(
                project, seed=seed, show_progress=show_progress, augmentation=augmentation
            )
    finally:
        if background is not None:
            background.close()
    meta = _meta(project, started, parts)
    if fingerprints is None:
        fingerprints = part_fingerprints(project, seed=seed, augmentation=augmentation)
    meta["fingerprints"] = {part: fingerprints[part] for part in parts}
    if earlier.used:
        meta["reused"] = earlier.used
    duckling = duckling_from_pipeline(project.config.pipeline) if nlu else None
    return TrainedModel(served_domain(project), policies, understood, ensemble, meta, duckling)


def train_core(
    project: Project, *, seed: int, show_progress: bool, augmentation: int | None
) -> tuple[list[Policy], dict[str, Any]]:
    """The project's dialogue policies and the ensemble's settings, trained (here, or in the
    second process of ``training.parallel``)."""
    from training.lstm import make_lstm_trainer  # torch: only where a policy trains

    trainer = make_lstm_trainer(seed=seed, show_progress=show_progress, augmentation=augmentation)
    return train_policies(project, lstm_trainer=trainer)


def served_domain(project: Project) -> Domain:
    """The domain a trained model serves: the project's, with the stories' end-to-end bot turns
    as actions, as Rasa's importer adds them to the trained domain (a predicted one says its
    text)."""
    texts = bot_texts_of([*project.stories, *project.rules])
    return dataclasses.replace(
        project.domain, action_texts=tuple(dict.fromkeys([*project.domain.action_texts, *texts]))
    )


class _Earlier:
    """The earlier model files parts are taken from, each loaded (and checked) once."""

    def __init__(self, found: Mapping[str, Path]) -> None:
        self.found = dict(found)
        self.used: dict[str, str] = {}  # part -> the file's name, for the model's meta
        self._loaded: dict[Path, TrainedModel | None] = {}

    def model(self, part: str) -> TrainedModel | None:
        path = self.found.get(part)
        if path is None:
            return None
        if path not in self._loaded:
            try:
                self._loaded[path] = TrainedModel.from_file(path)
            except ModelFileError as exc:
                logger.warning("%s not reused, trained anew: %s", PART_NAMES[part], exc)
                self._loaded[path] = None
        model = self._loaded[path]
        if model is not None:
            self.used[part] = path.name
        return model


def _meta(project: Project, started: float, parts: list[str]) -> dict[str, Any]:
    meta = {
        "trained_at": time.time(),
        "train_seconds": round(time.perf_counter() - started, 3),
        "fingerprint": fingerprint(project),
        "language": project.config.language,
        "project": project.root.name,
        "parts": parts,
    }
    if has_custom_slots(project.domain):  # where a served model imports them from, after here
        meta[CODE_FOLDER] = str(project.root.resolve())
    return meta


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
        custom = [c for c in project.config.pipeline if is_custom_name(c.name)]
        if custom:
            logger.warning(
                "%sthe pipeline's custom components (%s) are not run: the project has no NLU "
                "examples, so no NLU model is trained for them to run beside",
                custom[0].origin.prefix,
                ", ".join(c.name for c in custom),
            )
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
    reuse: Mapping[str, Path] | None = None,
    parallel: bool | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> TrainedModel:
    model = train_project(
        project,
        seed=seed,
        show_progress=show_progress,
        augmentation=augmentation,
        nlu=nlu,
        core=core,
        reuse=reuse,
        parallel=parallel,
        fingerprints=fingerprints,
    )
    model.to_file(out)
    return model
