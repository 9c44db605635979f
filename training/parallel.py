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


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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

    def result(self) -> tuple[list[Policy], dict[str, Any]]:
        """The trained policies and the ensemble's settings, as this process would have them."""
        from chatbot.agent import TrainedModel

        failure = self._future.result()
        if failure is not None:
            raise _rebuilt(*failure)
        model = TrainedModel.from_file(self._out)
        return model.policies, model.ensemble

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
