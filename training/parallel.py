"""Training the dialogue policies in a process of their own while the NLU trains in this one.

The two parts read nothing of each other and each trains on one thread, so on a machine with two
cores or more, training both at once takes about as long as the longer of them instead of their
sum (docs/benchmarks.md, "Training the NLU and the policies at once"). The policies' process is a
fresh Python (``python -m training.parallel FOLDER``: no copy of this process's torch threads,
and, unlike ``multiprocessing``'s spawn, no second run of the script that called training). It
reads the project from a file in a private temporary folder (pickled for that hand-over only;
nothing is stored that way), trains the policies as this process would, and writes them as a
model file of the safe format, which this process reads back as ``--reuse`` reads an earlier
model's part: the same seed gives the same tensors, so the model is the one training the parts
one after the other writes (``tests/training/test_parallel.py``).

Its log records come as JSON lines on its standard output and are logged here under their own
logger names, so levels, handlers, ``--log-file`` and syslog apply to them as to this process's;
its progress bar is off (two bars would garble one terminal). A mistake it reports (a
``ChatbotError``) is raised here as the same class with the same one-line message; a process
that fails otherwise (killed, out of memory) leaves the policies to train here.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from chatbot import errors
from chatbot.dialogue.policy import Policy
from chatbot.project.project import Project
from training.dialogue import policy_configs

logger = logging.getLogger(__name__)

# Below this many NLU examples the NLU trains in seconds, and starting a second Python with torch
# (about a second of CPU) would take about as long as it saves.
MIN_EXAMPLES = 200


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may run on: its affinity where the system tells it, at most its
    container's CPU quota (cgroup v2's ``cpu.max``, "quota period"; a container limited to one
    CPU sees all of the machine's in its affinity)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return cpus


def worth_it(project: Project) -> bool:
    """Whether to train the policies beside the NLU: two CPUs or more, an NLU with enough examples
    to take a while, and stories for a policy that trains a network (rules and memoization alone
    take no time)."""
    kinds = [kind for kind, _ in policy_configs(project.config.policies, notices=False)]
    return (
        "lstm" in kinds
        and bool(project.stories)
        and len(project.nlu.examples) >= MIN_EXAMPLES
        and usable_cpus() >= 2
    )


def start_beside(
    project: Project, *, seed: int, augmentation: int | None
) -> PoliciesInBackground | None:
    """The policies training in a second process, or None where one cannot be started (no
    Python to start, the project not pickling): they train here then."""
    try:
        return PoliciesInBackground(project, seed=seed, augmentation=augmentation)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as error:
        logger.warning("the dialogue policies train after the NLU (no second process: %s)", error)
        return None


class PoliciesInBackground:
    """The project's policies training in a process of their own; ``result()`` waits for them."""

    def __init__(self, project: Project, *, seed: int, augmentation: int | None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="chatbot-policies-")
        folder = Path(self._folder.name)
        self._out = folder / "policies.model"
        self._result = folder / "result.json"
        level = logging.getLogger().getEffectiveLevel()
        paths = [p for p in sys.path if isinstance(p, str)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        try:
            with (folder / "job.pickle").open("wb") as job:
                pickle.dump((project, seed, augmentation), job, pickle.HIGHEST_PROTOCOL)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "training.parallel", str(folder), str(level)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:  # nothing started: leave no folder behind
            self._folder.cleanup()
            raise
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=_log_lines, args=(self._process.stdout,), daemon=True),
            threading.Thread(
                target=_keep_lines, args=(self._process.stderr, self._stderr), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        logger.info("training the dialogue policies in a second process, beside the NLU")

    def result(self) -> tuple[list[Policy], dict[str, Any]] | None:
        """The trained policies and the ensemble's settings, as this process would have them;
        None where the process failed on its own (killed, out of memory, an error of ours): the
        caller trains them itself then. A mistake in the project or its training (a
        ``ChatbotError``) is raised, as training here would raise it."""
        from chatbot.agent import TrainedModel

        code = self._process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        why = f"exit {code}"
        try:
            outcome = json.loads(self._result.read_text()) if code == 0 else None
            if outcome is not None and outcome.get("error") is None:
                model = TrainedModel.from_file(self._out)
                return model.policies, model.ensemble
        except (OSError, ValueError, errors.ChatbotError) as error:
            outcome, why = None, f"{why}; {error}"
        if outcome is None:
            last = self._stderr[-1].strip() if self._stderr else ""
            logger.warning(
                "the dialogue policies' second process failed (%s%s); training them here",
                why,
                f": {last}" if last else "",
            )
            return None
        raise _rebuilt(*outcome["error"])

    def close(self) -> None:
        """Stop the process if it still runs (this process failed first), and clean up."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
        self._folder.cleanup()


def _train(project: Project, seed: int, augmentation: int | None, out: Path) -> None:
    """In the policies' process: train them and write them to ``out``."""
    from chatbot.agent import TrainedModel
    from training.train import served_domain, train_core

    policies, ensemble = train_core(
        project, seed=seed, show_progress=False, augmentation=augmentation
    )
    TrainedModel(served_domain(project), policies, None, ensemble, {}, None).to_file(out)


def _rebuilt(name: str, message: str) -> errors.ChatbotError:
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.ChatbotError):
        try:
            return kind(message)
        except TypeError:  # one whose constructor takes more than a message
            pass
    return errors.TrainingError(message)


class _JsonLines(logging.Handler):
    """In the policies' process: each record as one JSON line on standard output."""

    def emit(self, record: logging.LogRecord) -> None:
        fields = {"name": record.name, "levelno": record.levelno, "msg": record.getMessage()}
        fields["created"] = record.created
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def _log_lines(stream: IO[bytes]) -> None:
    """Here: log the policies' process's records under their own loggers."""
    for raw in stream:
        try:
            fields = json.loads(raw)
            record = logging.makeLogRecord(
                {**fields, "levelname": logging.getLevelName(fields["levelno"]), "args": None}
            )
        except (ValueError, KeyError, TypeError):
            continue  # not a record of ours (a library printing)
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)


def _keep_lines(stream: IO[bytes], lines: list[str]) -> None:
    for raw in stream:
        lines.append(raw.decode(errors="replace"))
        del lines[:-20]


def _main(folder: Path, level: int) -> None:
    """The policies' process: train, then say how it went in ``result.json``."""
    root = logging.getLogger()
    root.handlers[:] = [_JsonLines()]
    root.setLevel(level)
    with (folder / "job.pickle").open("rb") as job:
        project, seed, augmentation = pickle.load(job)  # our own file, written just now
    outcome: dict[str, Any] = {"error": None}
    try:
        _train(project, seed, augmentation, folder / "policies.model")
    except errors.ChatbotError as error:
        outcome["error"] = [type(error).__name__, str(error)]
    (folder / "result.json").write_text(json.dumps(outcome))


if __name__ == "__main__":
    _main(Path(sys.argv[1]), int(sys.argv[2]))
