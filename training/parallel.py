"""Training the dialogue policies in a process of their own while the NLU trains in this one.

The two parts read nothing of each other and each trains on one thread, so on a machine with two
cores or more, training both at once takes about as long as the longer of them instead of their
sum (docs/benchmarks.md, "Training the NLU and the policies at once"). The policies' process is
started fresh (``spawn``: no copy of this process's torch threads), gets the project through its
pipe (pickled for the pipe only; nothing is stored that way), trains the policies as this
process would, and writes them as a model file of the safe format, which this process reads back
as ``--reuse`` reads an earlier model's part: the same seed gives the same tensors, so the model
is the one training the parts one after the other writes (``tests/training/test_parallel.py``).

Its log lines come through a queue and are logged here under their own logger names, so levels,
handlers, ``--log-file`` and syslog apply to them as to this process's; its progress bar is off
(two bars would garble one terminal). A mistake it reports (a ``ChatbotError``) is raised here as
the same class with the same one-line message.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from logging.handlers import QueueHandler
from pathlib import Path
from typing import Any

from chatbot import errors
from chatbot.dialogue.policy import Policy
from chatbot.project.project import Project

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
    from training.dialogue import policy_configs

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
    shared memory for its queue, a system without processes): they train here then."""
    try:
        return PoliciesInBackground(project, seed=seed, augmentation=augmentation)
    except (OSError, RuntimeError, ImportError) as error:
        logger.warning("the dialogue policies train after the NLU (no second process: %s)", error)
        return None


class PoliciesInBackground:
    """The project's policies training in a process of their own; ``result()`` waits for them."""

    def __init__(
        self,
        project: Project,
        *,
        seed: int,
        augmentation: int | None,
    ) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="chatbot-policies-")
        self._out = Path(self._folder.name) / "policies.model"
        context = multiprocessing.get_context("spawn")
        self._records: Any = context.Queue()
        self._forwarder = threading.Thread(target=_forward, args=(self._records,), daemon=True)
        self._forwarder.start()
        level = logging.getLogger().getEffectiveLevel()
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=_log_to_queue,
            initargs=(self._records, level),
        )
        self._future = self._pool.submit(_train, project, seed, augmentation, str(self._out))
        logger.info("training the dialogue policies in a second process, beside the NLU")

    def result(self) -> tuple[list[Policy], dict[str, Any]] | None:
        """The trained policies and the ensemble's settings, as this process would have them;
        None where the process failed on its own (killed, out of memory, the project not
        passing through its pipe): the caller trains them itself then. A mistake in the project
        or its training (a ``ChatbotError``) is raised, as training here would raise it."""
        from chatbot.agent import TrainedModel

        try:
            failure = self._future.result()
            if failure is None:
                model = TrainedModel.from_file(self._out)
                return model.policies, model.ensemble
        except Exception as error:  # whatever ended the process: train them here
            logger.warning(
                "the dialogue policies' second process failed (%s); training them here",
                str(error) or type(error).__name__,
            )
            return None
        raise _rebuilt(*failure)

    def close(self) -> None:
        """Stop the process (if it still runs: this process failed first) and the forwarding."""
        self._future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._records.put(None)
        self._forwarder.join(timeout=5)
        self._records.close()
        self._folder.cleanup()


def _train(
    project: Project, seed: int, augmentation: int | None, out: str
) -> tuple[str, str] | None:
    """In the policies' process: train them and write them to ``out``; a ``ChatbotError`` is
    returned as (class name, message), since not every one of them pickles back whole."""
    from chatbot.agent import TrainedModel
    from training.dialogue import train_policies
    from training.lstm import make_lstm_trainer
    from training.train import served_domain

    try:
        trainer = make_lstm_trainer(seed=seed, show_progress=False, augmentation=augmentation)
        policies, ensemble = train_policies(project, lstm_trainer=trainer)
        model = TrainedModel(served_domain(project), policies, None, ensemble, {}, None)
        model.to_file(Path(out))
    except errors.ChatbotError as error:
        return type(error).__name__, str(error)
    return None


def _rebuilt(name: str, message: str) -> errors.ChatbotError:
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.ChatbotError):
        try:
            return kind(message)
        except TypeError:  # one whose constructor takes more than a message
            pass
    return errors.TrainingError(message)


def _log_to_queue(records: Any, level: int) -> None:
    """In the policies' process: every log record goes to this process's queue."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(QueueHandler(records))
    root.setLevel(level)


def _forward(records: Any) -> None:
    """Here: log the policies' process's records under their own loggers, until ``None``."""
    while True:
        try:
            record = records.get()
        except (EOFError, OSError, queue.Empty):
            return
        if record is None:
            return
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)
