"""Files named on the command line that are no files: a named pipe passed as `--endpoints` was
silently no endpoints, and as `--logging-config-file` waited forever for a writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from chatbot.errors import ConfigError
from chatbot.log_setup import _logging_config
from chatbot.server.app import read_credentials, read_endpoints
from tests.helpers import without_waiting_on


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yml"
    os.mkfifo(path)
    return path


def raised(call: Any, pipe: Path) -> BaseException | None:
    """What ``call()`` raised (None where it returned), failing the test where it waits."""
    try:
        without_waiting_on(call, pipe)
    except ConfigError as error:
        return error
    return None


@pytest.mark.parametrize("reader", [read_endpoints, read_credentials])
def test_endpoints_or_credentials_given_as_a_named_pipe_are_named(
    tmp_path: Path, reader: Any
) -> None:
    pipe = fifo(tmp_path)
    error = raised(lambda: reader(tmp_path, pipe), pipe)
    assert isinstance(error, ConfigError)
    assert "not a regular file but a named pipe (FIFO)" in str(error)
    missing = raised(lambda: reader(tmp_path, tmp_path / "nope.yml"), pipe)
    assert isinstance(missing, ConfigError) and "no such" in str(missing)


def test_a_logging_configuration_that_is_a_named_pipe_is_an_error_not_a_wait(
    tmp_path: Path,
) -> None:
    pipe = fifo(tmp_path)
    error = raised(lambda: _logging_config(pipe), pipe)
    assert isinstance(error, ConfigError) and "named pipe" in str(error)
