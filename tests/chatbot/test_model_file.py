from __future__ import annotations

import gc
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from chatbot import model_file
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ModelFileError
from tests.helpers import dialogue_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m") / "bot.model"
    dialogue_model("moodbot").to_file(path)
    return path


def test_round_trip_of_tensors_and_metadata(tmp_path: Path) -> None:
    tensors = {
        "a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.tensor([1, 2]),
    }
    path = tmp_path / "x.model"
    model_file.save(path, {"hello": ["world", 1]}, tensors)
    meta, back = model_file.load(path)
    assert meta == {"hello": ["world", 1]}
    assert set(back) == set(tensors)
    for name, tensor in tensors.items():  # read back as numpy, torch-free, same dtype and values
        assert back[name].dtype == tensor.numpy().dtype
        assert np.array_equal(back[name], tensor.numpy())
    assert b"pickle" not in path.read_bytes() and b"\x80\x04" not in path.read_bytes()[:16]


async def test_a_trained_model_round_trips_and_answers(saved: Path) -> None:
    agent = Agent.load(saved)
    assert await agent.handle_text("/greet", "x")
    original = dialogue_model("moodbot")
    loaded = TrainedModel.from_file(saved)
    # The action order is the policies' label order: it must survive the file exactly.
    assert loaded.domain.action_names == original.domain.action_names
    assert [p.name for p in loaded.policies] == [p.name for p in original.policies]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated|checksum"),
        (lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:], "checksum mismatch|truncated"),
        (lambda b: b[:30] + bytes([b[30] ^ 0xFF]) + b[31:], "checksum mismatch|not valid JSON"),
        (lambda b: b"PK\x03\x04" + b[4:], "zip/tar model"),
        # Rasa 3's model: a .tar.gz file (gzip's magic bytes).
        (
            lambda b: gzip.compress(b[:2000]),
            r"this is a Rasa model \(a \.tar\.gz file\), not a chatbot model file; train this "
            "project with `chatbot train`",
        ),
        (lambda b: b"hello", "not a chatbot model file"),
        (lambda b: b + b"extra", "checksum|extra bytes"),
    ],
)
def test_damaged_files_are_refused_with_a_clear_error(
    saved: Path, tmp_path: Path, damage, message: str
) -> None:
    bad = tmp_path / "bad.model"
    bad.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(ModelFileError, match=message):
        TrainedModel.from_file(bad)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        model_file.load(tmp_path / "nope.model")
    with pytest.raises(ModelFileError, match="no trained model"):
        Agent.load(tmp_path)


def test_a_model_larger_than_any_server_loads_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training wrote a 770 MB model that `chatbot run` then refused (its limit is for loading);
    it is refused when saving, naming its largest parts, and nothing is written."""
    monkeypatch.setattr(model_file, "MODEL_FILE_LIMIT", 4096)
    path = tmp_path / "big.model"
    meta = {"policies": {"memo": ["x" * 3000]}, "domain": {"a": 1}}
    with pytest.raises(ModelFileError, match=r"more than a model file may be") as info:
        model_file.save(path, meta, {"nlu.w": np.zeros(512, np.float32)})
    assert "largest parts: policies 0.0 MiB, nlu 0.0 MiB, domain" in str(info.value)
    assert not path.exists() and not list(tmp_path.iterdir())
    model_file.save(path, {"domain": {"a": 1}}, {"nlu.w": np.zeros(4, np.float32)})
    assert model_file.load(path)[0] == {"domain": {"a": 1}}


@pytest.mark.parametrize("collector_on", [True, False])
def test_the_garbage_collector_is_paused_while_a_model_is_read_or_written(
    saved: Path, monkeypatch: pytest.MonkeyPatch, collector_on: bool
) -> None:
    """Reading a model makes millions of objects on a large bot, none of them garbage: the
    collector walking them over and over tripled M's load time. It runs again afterwards, as
    it did before (and stays off where the caller had it off)."""
    seen = []
    load = model_file.load

    def watched(path: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        seen.append(gc.isenabled())
        return load(path)

    monkeypatch.setattr(model_file, "load", watched)
    (gc.enable if collector_on else gc.disable)()
    try:
        TrainedModel.from_file(saved)
        assert seen == [False]
        assert gc.isenabled() is collector_on
        with pytest.raises(ModelFileError):
            TrainedModel.from_file(saved.with_name("missing.model"))
        assert gc.isenabled() is collector_on  # after a refusal too
        written = []
        monkeypatch.setattr(model_file, "save", lambda *args: written.append(gc.isenabled()))
        TrainedModel.from_file(saved).to_file(saved.with_name("again.model"))
        assert written == [False]
        assert gc.isenabled() is collector_on
    finally:
        gc.enable()
