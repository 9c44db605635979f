"""The policies trained in a second process while the NLU trains: the same model as training the
parts one after the other, their log lines in this process's logging, their mistakes raised here
as the same error, and only where it is worth a second process."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatbot import model_file
from chatbot.errors import TrainingError
from chatbot.project.loader import load_project
from tests.helpers import DOMAINS, ROOT
from tests.training.test_reuse import same_tensors
from training import parallel
from training.train import train_to_file


def moodbot(root: Path, *, policy_epochs: int = 3) -> Path:
    shutil.copytree(DOMAINS / "moodbot", root, ignore=shutil.ignore_patterns("models", "results"))
    config = root / "config.yml"
    text = config.read_text().replace("epochs: 100", "epochs: 3", 1)
    config.write_text(text.replace("epochs: 100", f"epochs: {policy_epochs}", 1))
    return root


def parts(path: Path) -> dict[str, object]:
    """The model file's JSON without what differs from one training to the next (times)."""
    meta = json.loads(json.dumps(model_file.load(path)[0], default=str))
    return {k: v for k, v in meta.items() if k not in ("trained_at", "train_seconds")}


def test_the_policies_trained_beside_the_nlu_are_those_trained_after_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = load_project(moodbot(tmp_path / "bot"))
    apart, together = tmp_path / "apart.model", tmp_path / "together.model"
    train_to_file(project, apart, show_progress=False, parallel=False)
    with caplog.at_level(logging.INFO):
        train_to_file(project, together, show_progress=False, parallel=True)
    assert same_tensors(apart, together)
    assert parts(apart) == parts(together)
    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert (
        "training.parallel",
        "training the dialogue policies in a second process, beside the NLU",
    ) in said
    # The policies' own lines, logged in that process, reach this one's logging under their names.
    assert any(name == "training.lstm" and "training sequences" in text for name, text in said)


def test_a_mistake_in_the_policies_process_is_raised_here_as_training_apart_raises_it(
    tmp_path: Path,
) -> None:
    bot = moodbot(tmp_path / "bot")
    config = bot / "config.yml"
    # A learning rate too large for float32 diverges the LSTM policy at once.
    text = config.read_text()
    head, tail = text.rsplit("epochs: 3", 1)
    config.write_text(head + "epochs: 3\n    learning_rate: 1e38" + tail)
    project = load_project(bot)
    errors = []
    for together in (False, True):
        with pytest.raises(TrainingError) as error:
            train_to_file(
                project, tmp_path / f"{together}.model", show_progress=False, parallel=together
            )
        errors.append(str(error.value))
    assert errors[0].startswith("the LSTM policy: the training diverged in epoch 1")
    assert errors[1] == errors[0]
    assert not list(tmp_path.glob("*.model"))


def test_a_second_process_only_where_it_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(moodbot(tmp_path / "bot"))
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    few = len(project.nlu.examples)
    assert few < parallel.MIN_EXAMPLES
    assert not parallel.worth_it(project)  # the NLU trains in seconds
    monkeypatch.setattr(parallel, "MIN_EXAMPLES", few)
    assert parallel.worth_it(project)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert not parallel.worth_it(project)  # one CPU: the two would take turns
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    rules_only = tuple(c for c in project.config.policies if c.name != "TEDPolicy")
    config = dataclasses.replace(project.config, policies=rules_only)
    assert not parallel.worth_it(dataclasses.replace(project, config=config))  # no time to save


def test_where_no_second_process_starts_the_policies_train_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = load_project(moodbot(tmp_path / "bot"))
    apart = tmp_path / "apart.model"
    train_to_file(project, apart, show_progress=False, parallel=False)
    # A project that cannot pass through the pipe (here: a function attached to it).
    unpicklable = dataclasses.replace(project)
    unpicklable.note = lambda: None  # type: ignore[attr-defined]
    together = tmp_path / "together.model"
    with caplog.at_level(logging.WARNING):
        train_to_file(unpicklable, together, show_progress=False, parallel=True)
    assert same_tensors(apart, together)
    assert any("no second process: Can't pickle" in r.getMessage() for r in caplog.records)


def test_a_killed_policies_process_is_no_result_and_no_hang(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = load_project(moodbot(tmp_path / "bot", policy_epochs=100))
    background = parallel.PoliciesInBackground(project, seed=42, augmentation=None)
    try:
        time.sleep(0.5)
        background._process.kill()  # as the kernel's out-of-memory killer would
        with caplog.at_level(logging.WARNING):
            assert background.result() is None
    finally:
        background.close()
    (said,) = [r.getMessage() for r in caplog.records if r.name == "training.parallel"]
    assert said.startswith("the dialogue policies' second process failed (exit -9")


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", 2),  # no quota: the affinity's
        ("100000 100000\n", 1),  # one CPU's worth
        ("250000 100000\n", 2),  # two and a half: at most the affinity's
        ("garbled", 2),
        (None, 2),  # no cgroup v2 file
    ],
)
def test_usable_cpus_heed_the_containers_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str | None, expected: int
) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    assert parallel.usable_cpus(path) == expected


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """The policies' process does not import the script that called training (multiprocessing's
    spawn would, running its top-level code a second time)."""
    bot = moodbot(tmp_path / "bot")
    marks = tmp_path / "marks.txt"
    script = tmp_path / "train_it.py"
    script.write_text(
        "import logging\n"
        "from pathlib import Path\n"
        "from chatbot.project.loader import load_project\n"
        "from training.train import train_to_file\n"
        "logging.basicConfig(level=logging.INFO)\n"
        f"with open({str(marks)!r}, 'a') as marks:\n"
        "    marks.write('ran\\n')\n"
        f"project = load_project(Path({str(bot)!r}))\n"
        f"train_to_file(project, Path({str(tmp_path / 'it.model')!r}), show_progress=False,"
        " parallel=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "training the dialogue policies in a second process" in done.stderr
    assert "LSTMPolicy: 3 epochs" in done.stderr  # the second process's line, logged here
    assert marks.read_text() == "ran\n"
    assert (tmp_path / "it.model").is_file()
