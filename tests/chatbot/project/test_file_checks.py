"""Paths in a project that are not what they should be: a device or a named pipe where a file
belongs, a file past the size a project file may have, a folder that cannot be read, a link to
nothing, and ``version:`` values Rasa's format check warns about or skips."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project import check_project, load_project, yaml_io
from chatbot.project.nlu_reader import read_nlu
from tests.helpers import without_waiting_on

from .conftest import DOMAIN, ProjectMaker

DEVICE = Path(os.devnull)  # a character device that reads as empty: a safe stand-in for /dev/zero


def _errors(root: Path, **paths: Any) -> list[str]:
    with pytest.raises(ProjectErrors) as caught:
        load_project(root, **paths)
    return [str(error) for error in caught.value.errors]


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe nobody writes to: opening it to read would wait forever."""
    path = tmp_path / "pipe.yml"
    os.mkfifo(path)
    yield path
    path.unlink()


# --- F5: a device or a named pipe where a file belongs; a size cap ------------------------------


def test_a_device_given_as_the_config_is_refused_for_what_it_is(
    make_project: ProjectMaker,
) -> None:
    """`--config /dev/zero` used to be read until the memory ran out."""
    errors = _errors(make_project(), config=DEVICE)
    assert errors == [f"{DEVICE}: is not a regular file but a character device"]


@pytest.mark.parametrize("option", ["domain", "config", "endpoints", "credentials"])
def test_a_named_pipe_without_a_writer_is_refused_at_once(
    make_project: ProjectMaker, fifo: Path, option: str
) -> None:
    root = make_project()
    errors = without_waiting_on(lambda: _errors(root, **{option: fifo}), fifo)
    assert f"{fifo}: is not a regular file but a named pipe (FIFO)" in errors


def test_a_named_pipe_given_as_json_training_data_is_refused(
    make_project: ProjectMaker, tmp_path: Path
) -> None:
    pipe = tmp_path / "nlu.json"
    os.mkfifo(pipe)
    root = make_project()
    errors = without_waiting_on(lambda: _errors(root, data=[root / "data", pipe]), pipe)
    assert errors == [f"{pipe}: is not a regular file but a named pipe (FIFO)"]


def test_a_project_file_past_the_size_limit_is_refused_naming_the_limit(
    make_project: ProjectMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_io, "DATA_FILE_LIMIT", 1024 * 1024)
    examples = "".join(f"    - example number {n}\n" for n in range(60_000))  # 1.5 MiB
    root = make_project({"data/big.yml": "nlu:\n- intent: greet\n  examples: |\n" + examples})
    errors = _errors(root)
    assert errors == [
        f"{root / 'data' / 'big.yml'}: is 1.5 MiB, more than a project file may be (1 MiB)"
    ]


@pytest.mark.parametrize(
    ("examples", "problem"),
    [
        (str(DEVICE), "is not a regular file but a character device"),
        ("data", "expected a file, found a folder"),
    ],
)
def test_a_lookup_table_path_that_is_no_file_is_named_for_what_it_is(
    make_project: ProjectMaker, examples: str, problem: str
) -> None:
    """Not "lookup table file not found": it is there, and it is something else."""
    root = make_project({"data/lookup.yml": f"nlu:\n- lookup: city\n  examples: {examples}\n"})
    [error] = _errors(root)
    assert error.startswith(f"{root / 'data' / 'lookup.yml'}:3: lookup table file ")
    assert error.endswith(f": {problem} (key 'examples', value '{examples}')")


# --- F7: folders that cannot be read, links to nothing ------------------------------------------


def test_a_data_folder_that_cannot_be_read_is_an_error(
    make_project: ProjectMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its NLU data would be left out of the training without a word."""
    root = make_project({"data/secret/nlu.yml": "nlu:\n- intent: inform\n  examples: |\n    - x\n"})
    secret = root / "data" / "secret"
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):  # root reads it anyway: the system refuses as it would
            scandir = os.scandir

            def refusing(path: Any = ".") -> Any:
                if Path(path) == secret:
                    raise PermissionError(13, "Permission denied", str(path))
                return scandir(path)

            monkeypatch.setattr(os, "scandir", refusing)
        project, errors = check_project(root)
    finally:
        secret.chmod(0o755)
    assert project is None
    assert [str(e) for e in errors] == [
        f"{secret}: cannot read the folder: Permission denied. "
        "Its files would be left out of the training data"
    ]


def test_a_link_to_nothing_and_named_pipes_in_data_are_skipped_naming_them(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_project()
    (root / "data" / "gone.yml").symlink_to(root / "nowhere.yml")
    os.mkfifo(root / "data" / "pipe.yml")
    os.mkfifo(root / "data" / "notes.md")  # looked into for Rasa 2's Markdown training data
    with caplog.at_level(logging.WARNING):
        project, errors = without_waiting_on(
            lambda: check_project(root), root / "data" / "notes.md"
        )
    assert project is not None and errors == []
    warned = [r.getMessage() for r in caplog.records]
    assert f"{root / 'data' / 'gone.yml'}: a link to nothing ({root / 'nowhere.yml'}); skipped" in (
        warned
    )
    assert (
        f"{root / 'data' / 'pipe.yml'}: not a regular file but a named pipe (FIFO); skipped"
        in warned
    )


# --- F6: `version:` as Rasa's validate_training_data_format_version reads it --------------------

NOT_TEXT = "must specify 'version' as string, for example: version: \"3.1\""
NEWER = 'is newer than "3.1", the latest of Rasa 3: the file is skipped'


@pytest.mark.parametrize(
    ("version", "warning", "read"),
    [
        ('"3.1"', None, True),
        ('"3.1.0"', None, True),
        ('"3"', None, True),
        ('""', None, True),  # Rasa: as if there were none
        ("3.1", NOT_TEXT + " (found 3.1)", True),
        ("[1]", NOT_TEXT + " (found [1])", True),
        ("garbage", NOT_TEXT + " (found 'garbage')", True),
        ('"4.0"', "format version '4.0' " + NEWER, False),
        ('"3.2"', "format version '3.2' " + NEWER, False),  # Rasa's latest is "3.1"
    ],
)
def test_the_version_of_a_data_file_is_checked_as_rasa_checks_it(
    make_project: ProjectMaker,
    caplog: pytest.LogCaptureFixture,
    version: str,
    warning: str | None,
    read: bool,
) -> None:
    root = make_project(
        {"data/more.yml": f"version: {version}\nnlu:\n- intent: inform\n  examples: |\n    - x\n"}
    )
    with caplog.at_level(logging.WARNING):
        project = load_project(root)
    warned = [r.getMessage() for r in caplog.records]
    if warning is None:
        assert warned == []
    else:
        assert len(warned) == 1, warned
        assert warned[0].startswith(f"{root / 'data' / 'more.yml'}:1: {warning}")
    assert ("inform" in {e.intent for e in project.nlu.examples}) is read


def test_a_domain_file_and_a_test_file_of_a_newer_version_are_skipped(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_project(
        {
            "domain/main.yml": DOMAIN,
            "domain/later.yml": 'version: "4.0"\nintents: [goodbye]\n',
            "domain.yml": None,
            "tests/test_later.yml": 'version: "4.0"\nstories:\n- story: s\n  steps:\n'
            "  - intent: nothing_known\n",
        }
    )
    with caplog.at_level(logging.WARNING):
        project = load_project(root)
    assert "goodbye" not in project.domain.intents
    assert project.test_stories == []
    warned = [r.getMessage() for r in caplog.records if NEWER in r.getMessage()]
    assert len(warned) == 2, warned


def test_an_nlu_file_read_alone_of_a_newer_version_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`chatbot test nlu --nlu FILE`, `data split nlu`: Rasa's NLU reader checks it too."""
    path = tmp_path / "nlu.yml"
    path.write_text('version: "4.0"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n')
    with caplog.at_level(logging.WARNING):
        assert read_nlu(path).examples == []
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:1: format version '4.0' {NEWER}, as Rasa skips it"
    ]
