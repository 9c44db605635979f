"""Files named on the command line that are no files: a named pipe passed as `--endpoints` was
silently no endpoints, and as `--logging-config-file` waited forever for a writer."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from chatbot.cli_common import _logging_config
from chatbot.errors import ConfigError
from chatbot.server.app import read_credentials, read_endpoints


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yml"
    os.mkfifo(path)
    return path


def raised_within(seconds: float, call: Any) -> BaseException | None:
    """What ``call()`` raised, run in a thread so that a call that blocks fails the test."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, "the call blocked"
    return outcome[0]


@pytest.mark.parametrize("reader", [read_endpoints, read_credentials])
def test_endpoints_or_credentials_given_as_a_named_pipe_are_named(
    tmp_path: Path, reader: Any
) -> None:
    error = raised_within(10, lambda: reader(tmp_path, fifo(tmp_path)))
    assert isinstance(error, ConfigError)
    assert "not a regular file but a named pipe (FIFO)" in str(error)
    missing = raised_within(10, lambda: reader(tmp_path, tmp_path / "nope.yml"))
    assert isinstance(missing, ConfigError) and "no such" in str(missing)


def test_a_logging_configuration_that_is_a_named_pipe_is_an_error_not_a_wait(
    tmp_path: Path,
) -> None:
    error = raised_within(10, lambda: _logging_config(fifo(tmp_path)))
    assert isinstance(error, ConfigError) and "named pipe" in str(error)
