"""A model file path that names no regular file, or a file past the size a model may have:
refused at once with what it is, never read until the memory runs out or waited on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatbot import model_file
from chatbot.errors import ModelFileError
from chatbot.file_input import read_start
from tests.helpers import without_waiting_on


def test_a_device_as_the_model_is_refused_for_what_it_is() -> None:
    """`--model /dev/zero` used to be read until the memory ran out (/dev/null reads as empty:
    the same path, safely)."""
    with pytest.raises(ModelFileError) as caught:
        model_file.load(Path(os.devnull))
    assert str(caught.value) == f"{os.devnull}: is not a regular file but a character device"


def test_a_named_pipe_as_the_model_is_refused_without_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    pipe = tmp_path / "bot.model"
    os.mkfifo(pipe)
    with pytest.raises(ModelFileError) as caught:
        without_waiting_on(lambda: model_file.load(pipe), pipe)
    assert str(caught.value) == f"{pipe}: is not a regular file but a named pipe (FIFO)"


def test_a_model_past_the_size_limit_is_refused_naming_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.model"
    path.write_bytes(b"CHATBOT\x00" + bytes(3 * 1024 * 1024))
    monkeypatch.setattr(model_file, "MODEL_FILE_LIMIT", 2 * 1024 * 1024)
    with pytest.raises(ModelFileError) as caught:
        model_file.load(path)
    assert str(caught.value) == f"{path}: is 3.0 MiB, more than a model file may be (2 MiB)"


def test_the_start_of_a_file_is_read_and_a_pipe_is_refused(tmp_path: Path) -> None:
    """What the data loader reads of a Markdown file to tell training data from a README."""
    text = tmp_path / "README.md"
    text.write_text("# A bot\n" * 100)
    assert read_start(text, 8) == b"# A bot\n"
    pipe = tmp_path / "notes.md"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="named pipe"):
        read_start(pipe, 8)
