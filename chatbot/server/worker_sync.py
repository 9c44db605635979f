"""What the processes of ``chatbot run --workers`` share, through a folder the supervisor makes
(``WorkerSlot.shared_dir``; ``chatbot.server.workers``).

- **Metrics.** Each worker writes its own figures (Prometheus' text format) to
  ``worker-<i>.prom`` every second; ``/metrics`` in any worker adds the others' latest to its own
  (``chatbot.server.metrics.merge_expositions``), so a scrape that reaches any of them counts all.
- **The served model.** ``PUT /model`` and ``DELETE /model`` reach one worker; it writes the
  model's file (or none) to ``model.json`` with a new id, and every worker, watching that file,
  loads the model and says so in ``worker-<i>.model``. The request is answered when every worker
  serves the new model. A worker started later (one that replaces a worker that died) starts
  with the model of ``model.json``.

Files are written whole and renamed into place, so a reader never sees half of one. A worker
whose supervisor is gone (killed with SIGKILL) stops by itself, as after a SIGTERM. Secrets the
workers must agree on (a channel's webhook secret, the chat's session keys), where the
credentials give none, come from ``shared_secret``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from chatbot.errors import ModelFileError
from chatbot.server.settings import WorkerSlot

logger = logging.getLogger(__name__)

MODEL_POINTER = "model.json"
UPLOADS = "models"
# How often a worker looks at model.json, and writes its metrics.
WATCH_EVERY = 0.1
PUBLISH_EVERY = 1.0
# How long PUT /model waits for every worker to serve the new model.
MODEL_WAIT = 60.0


@dataclass(frozen=True)
class ModelPointer:
    """The model every worker is to serve: ``model_file`` (None: none, after DELETE /model)."""

    id: str
    model_file: str | None
    source: str

    @classmethod
    def read(cls, folder: Path) -> ModelPointer | None:
        try:
            data = json.loads((folder / MODEL_POINTER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.error("%s: not readable (%s); the served model stays", folder, exc)
            return None
        file = data.get("model_file")
        return cls(str(data["id"]), None if file is None else str(file), str(data["source"]))

    def write(self, folder: Path) -> None:
        data = {"id": self.id, "model_file": self.model_file, "source": self.source}
        write_whole(folder / MODEL_POINTER, json.dumps(data))


def shared_secret(app: web.Application, purpose: str) -> bytes | None:
    """Under ``chatbot run --workers``: a secret for ``purpose`` that every worker derives alike
    (from the supervisor's random one), where a process would otherwise make up its own. None
    in a process that serves alone."""
    from chatbot.server.keys import SETTINGS

    settings = app.get(SETTINGS)
    if settings is None or settings.worker is None:
        return None
    return hmac.new(settings.worker.secret, purpose.encode(), hashlib.sha256).digest()


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path`` and rename it into place."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


class ModelNotShared(Exception):
    """Not every worker serves the new model (``reason`` says which, or that another PUT /model
    replaced it meanwhile)."""

    def __init__(self, reason: str, *, superseded: bool = False) -> None:
        super().__init__(reason)
        self.superseded = superseded


class WorkerSync:
    """One worker's side of the shared folder (see the module's docstring)."""

    def __init__(self, app: web.Application, slot: WorkerSlot, serving: str | None) -> None:
        self.app = app
        self.slot = slot
        self.folder = slot.shared_dir
        # The id of model.json this worker serves (None: the model it was started with).
        self.serving = serving
        self._published = 0.0
        self._supervisor = os.getppid()

    @property
    def uploads(self) -> Path:
        """Where uploaded models are kept, for every worker to load."""
        path = self.folder / UPLOADS
        path.mkdir(exist_ok=True)
        return path

    # ------------------------------------------------------------------------------ metrics

    def publish_metrics(self) -> None:
        from chatbot.server.keys import METRICS

        text = self.app[METRICS].own().decode()
        write_whole(self.folder / f"worker-{self.slot.index}.prom", text)
        self._published = time.monotonic()

    def others_metrics(self) -> list[str]:
        """The other workers' latest figures."""
        texts = []
        for index in range(1, self.slot.count + 1):
            if index == self.slot.index:
                continue
            with contextlib.suppress(FileNotFoundError):
                texts.append((self.folder / f"worker-{index}.prom").read_text(encoding="utf-8"))
        return texts

    # -------------------------------------------------------------------------------- model

    async def share_model(self, model_file: Path | None, source: str) -> None:
        """Have every worker serve ``model_file`` (this one already does); raise
        ``ModelNotShared`` if they do not within ``MODEL_WAIT`` seconds."""
        file = None if model_file is None else str(model_file.resolve())
        pointer = ModelPointer(uuid.uuid4().hex, file, source)
        pointer.write(self.folder)
        self._acknowledge(pointer.id)
        give_up = time.monotonic() + MODEL_WAIT
        while True:
            current = ModelPointer.read(self.folder)
            if current is not None and current.id != pointer.id:
                raise ModelNotShared(
                    "another PUT /model or DELETE /model replaced this model meanwhile",
                    superseded=True,
                )
            behind = [i for i in range(1, self.slot.count + 1) if self._served(i) != pointer.id]
            if not behind:
                return
            if time.monotonic() >= give_up:
                raise ModelNotShared(
                    f"worker(s) {', '.join(map(str, behind))} did not serve it within "
                    f"{MODEL_WAIT:.0f} s; they will load it when they can"
                )
            await asyncio.sleep(WATCH_EVERY / 2)

    def _served(self, index: int) -> str | None:
        try:
            return (self.folder / f"worker-{index}.model").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _acknowledge(self, pointer_id: str) -> None:
        self.serving = pointer_id
        write_whole(self.folder / f"worker-{self.slot.index}.model", pointer_id)

    async def follow_model(self) -> None:
        """Serve the model of model.json where it is not the one served."""
        from chatbot.server.api_model import apply_model, load_model

        pointer = ModelPointer.read(self.folder)
        if pointer is None or pointer.id == self.serving:
            return
        if pointer.model_file is None:
            apply_model(self.app, None, pointer.source)
        else:
            try:
                model = await load_model(Path(pointer.model_file))
            except ModelFileError as exc:  # the worker that wrote it had loaded it
                logger.error("the workers' new model does not load here (%s); keeping ours", exc)
                self.serving = pointer.id
                return
            if ModelPointer.read(self.folder) != pointer:
                return  # replaced while loading: the next look takes the newer one
            apply_model(self.app, model, pointer.source)
        self._acknowledge(pointer.id)

    # ----------------------------------------------------------------------------- the loop

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: watch model.json and publish the metrics while the server runs."""
        if self.serving is not None:
            self._acknowledge(self.serving)
        task = asyncio.get_running_loop().create_task(self._run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            if os.getppid() != self._supervisor:
                # The supervisor was killed: nobody would stop or replace this worker any more.
                logger.warning("the supervisor (pid %d) is gone: stopping", self._supervisor)
                os.kill(os.getpid(), signal.SIGTERM)  # a graceful shutdown, as SIGTERM is
                return
            try:
                await self.follow_model()
                if time.monotonic() - self._published >= PUBLISH_EVERY:
                    self.publish_metrics()
            except OSError as exc:
                logger.error("the workers' shared folder %s: %s", self.folder, exc)
            await asyncio.sleep(WATCH_EVERY)
