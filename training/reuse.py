"""Reusing the parts of an earlier model that nothing has changed for (Rasa's training cache).

A model file records, for each part it holds, a fingerprint of everything that part is trained
on (``meta["fingerprints"]``):

- ``nlu``: the config's language and pipeline, the NLU data (examples, synonyms, regexes, lookup
  tables), the domain's entities (the lookup extractor of a project without examples), and the
  source files of the pipeline's custom components (an edited component is trained again);
- ``core``: the domain, the stories and rules, the config's policies, ``--augmentation``, and
  what form training reads from the NLU data (which intents carry which entities, and their
  values; ``training.form_paths.nlu_usage``), not the examples' wording, and the source files
  of its custom policies.

Both also hold the seed and a digest of the framework's own code, so a model from another build
is never reused. Where a file's locations (file and line) are all that changed, nothing is
retrained: a part's training does not read them.

``chatbot train`` looks through the model files already in its output folder, newest first
(``SCAN_LIMIT`` of them), and takes each part whose fingerprint one of them shares from it
instead of training it again; training the same seed on the same data gives the same tensors,
so the model is the one a full training would write. ``--force`` trains everything anew;
``--dry-run`` says what would be trained. Rasa keeps a cache folder for this; we read the
models already written.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chatbot import model_file
from chatbot.dialogue.custom_policy import policy_class
from chatbot.errors import ModelFileError
from chatbot.project.custom_slots import slot_sources
from chatbot.project.domain import Origin
from chatbot.project.domain_reader import domain_to_dict
from chatbot.project.project import Project
from training.form_paths import nlu_usage
from training.nlu.custom import custom_sources

logger = logging.getLogger(__name__)

PARTS = ("nlu", "core")
PART_NAMES = {"nlu": "NLU", "core": "dialogue policies"}
SCAN_LIMIT = 20  # model files looked at, newest first

# Rasa's exit codes of `rasa train --dry-run`.
CODE_NO_NEED_TO_TRAIN = 0
CODE_NEEDS_TO_BE_RETRAINED = 1
CODE_FORCED_TRAINING = 8


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data that is the same in every process: sets sorted, dataclasses
    as their fields (locations left out), mappings with their keys in order."""
    if type(value) in _SCALARS:  # most of a project's values, at once (M: 0.65 -> 0.36 s)
        return value
    if isinstance(value, Origin):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "origin"
        }
    if isinstance(value, Mapping):
        return [[_plain(k), _plain(v)] for k, v in value.items()]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _digest(*parts: Any) -> str:
    text = json.dumps(_plain(parts), sort_keys=True, ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the framework's Python sources (``chatbot``, ``training``): a model trained by
    other code is not reused, whatever its version string says."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in ("chatbot", "training"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def part_fingerprints(project: Project, *, seed: int, augmentation: int | None) -> dict[str, str]:
    """Each part's fingerprint: equal fingerprints, equal training inputs (module docstring)."""
    code = code_digest()
    config = project.config
    return {
        "nlu": _digest(
            "nlu",
            code,
            seed,
            config.language,
            config.pipeline,
            project.nlu,
            sorted(project.domain.entities),
            custom_sources(config.pipeline),
        ),
        "core": _digest(
            "core",
            code,
            seed,
            augmentation,
            domain_to_dict(project.domain),
            project.stories,
            project.rules,
            config.policies,
            nlu_usage(project.nlu),
            custom_sources(config.policies, policy_class),
            slot_sources(project.domain),
        ),
    }


def _newest_first(folders: Iterable[Path]) -> list[Path]:
    found: dict[Path, float] = {}
    for folder in folders:
        try:
            for path in folder.glob("*.model"):
                try:
                    if path.is_file():
                        found[path.resolve()] = path.stat().st_mtime
                except OSError:
                    continue
        except OSError:
            continue
    return sorted(found, key=lambda p: found[p], reverse=True)[:SCAN_LIMIT]


def find_reusable(
    folders: Iterable[Path], fingerprints: Mapping[str, str], parts: Iterable[str]
) -> dict[str, Path]:
    """For each of ``parts``, the newest model file in ``folders`` whose fingerprint for that
    part is ours. Files that are not models, or damaged ones, are passed over."""
    wanted = [part for part in parts if part in fingerprints]
    found: dict[str, Path] = {}
    for path in _newest_first(folders):
        try:
            meta = model_file.read_meta(path)
        except (ModelFileError, OSError):
            continue
        theirs = meta.get("fingerprints")
        if not isinstance(theirs, dict):
            continue
        for part in wanted:
            if part not in found and theirs.get(part) == fingerprints[part]:
                found[part] = path
        if len(found) == len(wanted):
            break
    return found


def dry_run_code(needed: Iterable[str], reusable: Mapping[str, Path], *, force: bool) -> int:
    """Rasa's exit code of ``rasa train --dry-run``: 8 forced, 1 something to train, 0 nothing."""
    if force:
        return CODE_FORCED_TRAINING
    if any(part not in reusable for part in needed):
        return CODE_NEEDS_TO_BE_RETRAINED
    return CODE_NO_NEED_TO_TRAIN
