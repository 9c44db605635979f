"""Loading a bot project folder in Rasa's layout into a ``Project``.

```
domain.yml  or  domain/*.yml     intents, entities, slots, responses, actions, forms, ...
data/**/*.yml                    nlu:, stories:, rules: (and responses: for retrieval intents)
data/**/*.json                   NLU data in Rasa's JSON, or exported from LUIS, Wit.ai, Dialogflow
tests/**/test_*.yml              test stories
config.yml                       language, pipeline, policies (optional)
endpoints.yml, credentials.yml   optional
```

Every file is read even when another one fails, and all problems are reported together
(``ProjectErrors``). ``check_project`` also runs the semantic checks of
``chatbot.project.validation``, for ``chatbot data validate``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.file_input import kind_of, read_start
from chatbot.paths import exists
from chatbot.project.config import ProjectConfig
from chatbot.project.config_reader import config_from_dict
from chatbot.project.custom_slots import has_custom_slots, resolve_slot_kinds
from chatbot.project.domain_parts import DomainParts
from chatbot.project.domain_reader import collect_domain, domain_parts_from_dict
from chatbot.project.endpoints import Credentials, Endpoints
from chatbot.project.endpoints_reader import (
    UnsetVariable,
    credentials_from_dict,
    endpoints_from_dict,
)
from chatbot.project.format_version import check_format_version
from chatbot.project.nlu_reader import nlu_from_list
from chatbot.project.nlu_services import read_json_nlu
from chatbot.project.project import Project
from chatbot.project.stories import Story, StoryKind
from chatbot.project.story_reader import stories_from_list
from chatbot.project.training_data import NLUData
from chatbot.project.validation import validate_project
from chatbot.project.yaml_io import line_of, load_yaml, misspelled_keys

logger = logging.getLogger(__name__)

DATA_KEYS = ("version", "nlu", "stories", "rules", "responses")
_YAML_SUFFIXES = (".yml", ".yaml")

PathArg = Path | str | Sequence[Path | str] | None


@dataclass
class _Loaded:
    """What was read so far, and every problem met on the way."""

    nlu: NLUData = field(default_factory=NLUData)
    stories: list[Story] = field(default_factory=list)
    rules: list[Story] = field(default_factory=list)
    test_stories: list[Story] = field(default_factory=list)
    test_rules: list[Story] = field(default_factory=list)
    extra_domain: list[DomainParts] = field(default_factory=list)
    errors: list[ProjectError] = field(default_factory=list)


def load_project(
    root: Path,
    *,
    domain: PathArg = None,
    data: PathArg = None,
    config: Path | str | None = None,
    endpoints: Path | str | None = None,
    credentials: Path | str | None = None,
) -> Project:
    """Read a project; raises ``ProjectErrors`` with every problem in every file.

    Paths given explicitly are used as given (relative to the working directory); the defaults are
    looked for under ``root``. ``domain`` and ``data`` may be files, folders or lists of them.
    """
    project, errors, _ = _load(root, domain, data, config, endpoints, credentials)
    if errors:
        raise ProjectErrors(errors)
    assert project is not None
    return project


def check_project(
    root: Path,
    *,
    domain: PathArg = None,
    data: PathArg = None,
    config: Path | str | None = None,
    endpoints: Path | str | None = None,
    credentials: Path | str | None = None,
    tests: bool = True,
) -> tuple[Project | None, list[ProjectError]]:
    """Read and validate a project: (the project, or None if a file could not be read; errors).

    When a file fails to read, the semantic checks still run on the rest as long as the domain
    itself was read without errors (otherwise they would only echo the domain's problems).
    ``tests``: whether to read the test stories under tests/ (training does not need them).
    """
    project, errors, domain_ok = _load(root, domain, data, config, endpoints, credentials, tests)
    if project is None or not domain_ok:
        return None, errors
    semantic = _sorted(validate_project(project))
    if errors:
        return None, errors + semantic
    return project, semantic


def _load(
    root: Path,
    domain: PathArg,
    data: PathArg,
    config: Path | str | None,
    endpoints: Path | str | None,
    credentials: Path | str | None,
    read_tests: bool = True,
) -> tuple[Project | None, list[ProjectError], bool]:
    started = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        error = ProjectError("project folder not found", file=str(root))
        return None, [error], False
    loaded = _Loaded()

    data_paths = _paths(data) if data is not None else [root / "data"]
    data_files = _data_files(data_paths, loaded, explicit=data is not None)
    for path in data_files:
        if path.suffix != ".json":
            _read_data_file(path, loaded, root)
    tests = root / "tests"
    if read_tests and tests.is_dir():
        for path in _files(tests, loaded, prefix="test_"):
            _read_test_file(path, loaded)

    domain_paths = _paths(domain) if domain is not None else _default_domain(root)
    if not domain_paths:
        loaded.errors.insert(
            0,
            ProjectError(
                "no domain found",
                file=str(root / "domain.yml"),
                hint=f"Create domain.yml or a domain/ folder in {root}",
            ),
        )
        return None, loaded.errors, False
    parsed_domain, domain_errors = collect_domain(domain_paths, loaded.extra_domain)
    if has_custom_slots(parsed_domain) and not domain_errors:
        # A project's slot classes, imported as its components are: its folder, then here.
        folders = list(dict.fromkeys([root.resolve(), Path.cwd()]))
        parsed_domain, domain_errors = resolve_slot_kinds(parsed_domain, folders)

    project_config = _read_optional(
        Path(config) if config is not None else root / "config.yml",
        config is not None,
        loaded,
        lambda d, f: config_from_dict(d, f),
        ProjectConfig(),
    )
    for path in data_files:  # after the config: a Dialogflow export's files name the language
        if path.suffix == ".json":
            _read_json_data_file(path, loaded, project_config.language)
    project_endpoints = _read_optional(
        Path(endpoints) if endpoints is not None else root / "endpoints.yml",
        endpoints is not None,
        loaded,
        lambda d, f: endpoints_from_dict(d, f),
        Endpoints(),
    )
    project_credentials = _read_optional(
        Path(credentials) if credentials is not None else root / "credentials.yml",
        credentials is not None,
        loaded,
        lambda d, f: credentials_from_dict(d, f),
        Credentials(),
    )
    project = Project(
        root=root,
        domain=parsed_domain,
        nlu=loaded.nlu,
        stories=loaded.stories,
        rules=loaded.rules,
        test_stories=loaded.test_stories,
        test_rules=loaded.test_rules,
        config=project_config,
        endpoints=project_endpoints,
        credentials=project_credentials,
    )
    errors = _sorted(domain_errors + loaded.errors)
    logger.debug(
        "loaded project %s in %.1f ms: %d examples, %d stories, %d rules, %d test stories",
        root,
        (time.perf_counter() - started) * 1000,
        len(loaded.nlu.examples),
        len(loaded.stories),
        len(loaded.rules),
        len(loaded.test_stories),
    )
    return project, errors, not domain_errors


def _sorted(errors: list[ProjectError]) -> list[ProjectError]:
    """By file, then line (the order stays as found where neither is known)."""
    return sorted(errors, key=lambda e: (e.file or "", e.line or 0))


def _paths(value: PathArg) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def _default_domain(root: Path) -> list[Path]:
    for candidate in (root / "domain.yml", root / "domain.yaml", root / "domain"):
        if candidate.exists():
            return [candidate]
    return []


def _files(
    folder: Path, loaded: _Loaded, suffixes: tuple[str, ...] = _YAML_SUFFIXES, prefix: str = ""
) -> list[Path]:
    """The files under ``folder`` named ``<prefix>*<suffix>``, sorted; hidden ones (and those in
    hidden folders) left out, and folders linked to not entered (a link may loop).

    A folder that cannot be read is an error: training without the data in it would lose it
    unnoticed. A link to nothing, or a name that is not a regular file (a named pipe, a
    device), is a warning naming it, and is skipped.
    """

    def unreadable(error: OSError) -> None:
        loaded.errors.append(
            ProjectError(
                f"cannot read the folder: {error.strerror or error}",
                file=str(error.filename or folder),
                hint="Its files would be left out of the training data",
            )
        )

    found: list[Path] = []
    for current, folders, names in os.walk(folder, onerror=unreadable):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = Path(current, name)
            if name.startswith(".") or not name.startswith(prefix) or path.suffix not in suffixes:
                continue
            if path.is_file():
                found.append(path)
            elif path.is_symlink() and not exists(path):
                logger.warning("%s: a link to nothing (%s); skipped", path, os.readlink(path))
            elif not path.is_dir():  # a folder named x.yml is no file to read
                logger.warning("%s: not a regular file but %s; skipped", path, kind_of(path))
    return sorted(found)


def _data_files(paths: list[Path], loaded: _Loaded, *, explicit: bool) -> list[Path]:
    """The YAML files to read; a missing default ``data/`` folder just means no data. Markdown
    training data (Rasa 1 and 2) is not read, as in Rasa 3: each such file is named in a
    warning, so that its examples and stories are not lost unnoticed."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(_files(path, loaded, (*_YAML_SUFFIXES, ".json")))
            for markdown in sorted(path.rglob("*.md")):
                if _is_training_markdown(markdown):
                    logger.warning(
                        "%s: Markdown training data (Rasa 1 and 2) is not read since Rasa 3.0; "
                        "convert it to YAML (Rasa 2's `rasa data convert nlu|core`)",
                        markdown,
                    )
        elif exists(path):  # a file, or what reading it names (a named pipe, a device)
            files.append(path)
        elif explicit:
            loaded.errors.append(
                ProjectError("training data file or folder not found", file=str(path))
            )
    return files


def _is_training_markdown(path: Path) -> bool:
    """Whether a Markdown file holds Rasa 1/2 training data (``## intent:``, ``## story``,
    ``* intent`` lines), not a README."""
    try:
        head = read_start(path, 20_000).decode("utf-8", errors="replace")
    except OSError:  # not a regular file (a named pipe would never end): not training data
        return False
    lines = head.splitlines()
    nlu_headers = ("## intent:", "## synonym:", "## regex:", "## lookup:")
    if any(line.startswith(nlu_headers) for line in lines):
        return True  # NLU data
    # Stories: "* intent" user turns and "  - action" bot turns under "## story" headers.
    return any(line.startswith("* ") for line in lines) and any(
        line.lstrip().startswith(("- utter_", "- action_")) and line[:1].isspace() for line in lines
    )


def _load_file(path: Path, loaded: _Loaded) -> tuple[Any, bool]:
    """(parsed YAML, True), or (None, False) with the problem added to ``loaded.errors``."""
    try:
        return load_yaml(path), True
    except ProjectError as e:
        loaded.errors.append(e)
        return None, False


def _read_data_file(path: Path, loaded: _Loaded, root: Path) -> None:
    data, _ = _load_file(path, loaded)
    if data is None:
        return
    file = str(path)
    if not isinstance(data, dict) or not any(k in data for k in DATA_KEYS[1:]):
        # Rasa reads only the files that hold training data; others are not its business.
        logger.debug("%s holds no nlu:, stories:, rules: or responses: and is skipped", file)
        return
    if not check_format_version(data, file):  # newer than Rasa 3's: skipped, as Rasa does
        return
    # Rasa's schemas let any other top-level key through, unread (a `regex:` block written
    # beside `nlu:` instead of in it): a warning; a misspelling of ours stays an error.
    loaded.errors.extend(misspelled_keys(data, DATA_KEYS, file=file, what="a training data file"))
    nlu, errors = nlu_from_list(data.get("nlu"), file, base_dirs=[root], line=line_of(data, "nlu"))
    loaded.nlu.merge(nlu)
    loaded.errors.extend(errors)
    sections: tuple[tuple[str, StoryKind, list[Story]], ...] = (
        ("stories", "story", loaded.stories),
        ("rules", "rule", loaded.rules),
    )
    for key, kind, into in sections:
        found, errors = stories_from_list(data.get(key), file, kind, line=line_of(data, key))
        into.extend(found)
        loaded.errors.extend(errors)
    if data.get("responses") is not None:
        parts, errors = domain_parts_from_dict(data, file, only_responses=True)
        loaded.extra_domain.append(parts)
        loaded.errors.extend(errors)


def _read_json_data_file(path: Path, loaded: _Loaded, language: str) -> None:
    """NLU data in JSON (``chatbot.project.nlu_services``); another JSON file is not training
    data and is left alone, as Rasa leaves it (one that is not JSON at all is named)."""
    try:
        found = read_json_nlu(path, language)
    except ProjectError as error:
        if error.message.startswith("not valid JSON"):
            logger.warning("%s; not read as training data", error)
            return
        loaded.errors.append(error)
        return
    if found is None:
        logger.debug("%s holds no NLU training data and is skipped", path)
        return
    loaded.nlu.merge(found)


def _read_test_file(path: Path, loaded: _Loaded) -> None:
    data, _ = _load_file(path, loaded)
    if not isinstance(data, dict) or not check_format_version(data, str(path)):
        return
    file = str(path)
    for key, title in (("stories", "story"), ("rules", "rule")):
        found, errors = stories_from_list(
            data.get(key), file, "test", title=title, line=line_of(data, key)
        )
        (loaded.test_stories if key == "stories" else loaded.test_rules).extend(found)
        loaded.errors.extend(errors)


def _read_optional(path: Path, required: bool, loaded: _Loaded, reader: Any, default: Any) -> Any:
    """An optional file (config, endpoints, credentials): its default when it is missing."""
    if not required and not path.exists():
        return default
    data, ok = _load_file(path, loaded)
    if not ok:
        return default
    result, errors = reader(data, str(path))
    for error in errors:
        if isinstance(error, UnsetVariable):  # needed when the bot runs, not to train it
            logger.warning("%s (needed when the bot runs)", error)
        else:
            loaded.errors.append(error)
    return result
