"""Rasa's ``POST /model/train``: a bot's training data in one YAML body, a model file back.

The body holds what a project's files hold, side by side, as Rasa's endpoint takes it: the
config's keys (``recipe``, ``language``, ``pipeline``, ``policies``, ``assistant_id``), the
domain's (``intents``, ``entities``, ``slots``, ``responses``, ``actions``, ``forms``,
``session_config``, ...) and the training data's (``nlu``, ``stories``, ``rules``). They are
written as a project's files and trained by ``chatbot train`` in a process of its own, so the
server goes on answering conversations meanwhile; one training runs at a time (``/status`` says
how many are running or waiting). The answer is the model file (``application/octet-stream``,
its name in the ``filename`` header), kept in the server's ``models/`` folder too unless
``?save_to_default_model_directory=false``; ``PUT /model`` then serves it. A mistake in the data
is a 400 whose message names the part and line, as ``chatbot train`` names file and line.

Query parameters, as Rasa's: ``save_to_default_model_directory``, ``augmentation`` (stories
glued per story for the LSTM policy), ``force_training`` (a part that nothing it is trained on
changed for is otherwise taken from a model already in the server's ``models/`` folder, as
``chatbot train`` does with its own; see ``training.reuse``) and ``num_threads``, accepted and
without effect (training uses one thread). ``callback_url`` (Rasa's asynchronous training):
the request is answered at once with 204 and the model file, or the training's error, is POSTed
to that URL when the training ends (``chatbot.server.answer_later``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from chatbot.errors import ProjectError
from chatbot.model_file import new_model_path
from chatbot.project.yaml_io import load_yaml_text, to_plain
from chatbot.ranges import whole_number
from chatbot.server.answer_later import answer_now_or_later, callback_url
from chatbot.server.auth import Auth
from chatbot.server.bodies import read_large_body
from chatbot.server.errors import json_error
from chatbot.server.keys import SETTINGS

logger = logging.getLogger(__name__)

CONFIG_KEYS = ("recipe", "language", "pipeline", "policies", "assistant_id")
DATA_KEYS = ("nlu", "stories", "rules")
MAX_TRAINING_DATA = 64 * 1024 * 1024
TRAIN_TIMEOUT = 3600.0
# What each part of the body became, for error messages that name the part, not a temp file.
PART_FILES = {"config.yml": "config", "domain.yml": "domain", "data/training.yml": "data"}


class TrainingJobs:
    """One training at a time; how many are running or waiting, for ``/status``."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.active = 0


TRAINING_JOBS = web.AppKey("training_jobs", TrainingJobs)


def register_train_route(app: web.Application, auth: Auth) -> None:
    app[TRAINING_JOBS] = TrainingJobs()
    app.router.add_post("/model/train", auth.protect(train))


async def train(request: web.Request) -> web.Response:
    if request.content_type == "application/json":  # Rasa 3 reads YAML whatever it says
        raise json_error(
            415,
            "send the training data as YAML (Content-Type: application/yaml): the config's, the "
            "domain's and the data's keys in one document, as Rasa's /model/train takes them",
        )
    callback_url(request)  # a bad one is refused before the body is read
    save = _flag(request, "save_to_default_model_directory", default=True)
    force = _flag(request, "force_training", default=False)
    augmentation = _count(request, "augmentation")
    kept = request.app[SETTINGS].project_dir / "models"
    text = await _read_text(request)
    parts = _split(text)
    jobs = request.app[TRAINING_JOBS]

    async def work() -> web.Response:
        return await _trained(jobs, parts, augmentation, force=force, kept=kept, save=save)

    return await answer_now_or_later(request, work, "training")


async def _trained(
    jobs: TrainingJobs,
    parts: dict[str, dict[str, Any]],
    augmentation: int | None,
    *,
    force: bool,
    kept: Path,
    save: bool,
) -> web.Response:
    """The training's answer: the model file (kept in ``kept`` too where ``save``)."""
    jobs.active += 1
    try:
        async with jobs.lock:
            model, name = await _train(parts, augmentation, force=force, reuse_from=kept)
    finally:
        jobs.active -= 1
    if save:
        path = kept / name
        if path.exists():  # a training that reused every part can end in the same second
            path = new_model_path(kept)
            name = path.name
        await asyncio.to_thread(_write, path, model)
        logger.info("trained by the API: %s", path)
    return web.Response(
        body=model,
        content_type="application/octet-stream",
        headers={"filename": name, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _flag(request: web.Request, key: str, *, default: bool) -> bool:
    value = request.query.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise json_error(400, f"query parameter '{key}' must be true or false, not {value!r}")


def _count(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value is None:
        return None
    number = whole_number(value)
    if number is None:
        raise json_error(400, f"query parameter '{key}' must be a whole number, not {value!r}")
    return number


async def _read_text(request: web.Request) -> str:
    data = await read_large_body(request, MAX_TRAINING_DATA, "training data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise json_error(400, "the training data is not UTF-8 text") from None


def _split(text: str) -> dict[str, dict[str, Any]]:
    """The body's keys as a project's three files: config, domain and data."""
    try:
        # The project loader's YAML reader: its limits on nesting and aliases hold here too (a
        # body nested thousands deep was a RecursionError in yaml.safe_load: a 500).
        body = to_plain(load_yaml_text(text, file="the training data"))
    except ProjectError as error:
        raise json_error(400, str(error)) from None
    if not isinstance(body, dict) or not body:
        raise json_error(
            400, "the training data must be a YAML mapping of config, domain and data keys"
        )
    version = body.get("version", "3.1")
    config = {k: body[k] for k in CONFIG_KEYS if k in body}
    data = {k: body[k] for k in DATA_KEYS if k in body}
    domain = {k: v for k, v in body.items() if k not in (*CONFIG_KEYS, *DATA_KEYS)}
    if not any(k in data for k in DATA_KEYS):
        raise json_error(400, "the training data has none of nlu, stories or rules")
    return {
        "config.yml": config,
        "domain.yml": {"version": version, **domain},
        "data/training.yml": {"version": version, **data},
    }


async def _train(
    parts: dict[str, dict[str, Any]],
    augmentation: int | None,
    *,
    force: bool = False,
    reuse_from: Path | None = None,
) -> tuple[bytes, str]:
    """``chatbot train`` on the parts in a folder of their own; (the model's bytes, its name)."""
    with tempfile.TemporaryDirectory(prefix="chatbot-train-") as tmp:
        root = Path(tmp)
        for name, content in parts.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
        name = time.strftime("%Y%m%d-%H%M%S.model")
        out = root / "models" / name
        command = train_command(tmp, out, augmentation, force=force, reuse_from=reuse_from)
        await run_process(command, tmp, "training", "TrainingError", "TrainingFailed")
        if not out.is_file():
            logger.error("API training ended without a model file")
            raise json_error(
                500, "training failed on the server; its log says why", "TrainingFailed"
            )
        return out.read_bytes(), name


async def run_process(
    command: list[str], folder: str, what: str, mistake: str, failure: str
) -> None:
    """``command`` (a ``chatbot`` command) in a process of its own, so that the server goes on
    answering: a 400 (reason ``mistake``) with its error lines where it exits for a mistake in
    the data (files in ``folder`` named as the body's parts), a 500 (``failure``) where it fails
    otherwise; killed where it outlives ``TRAIN_TIMEOUT`` or the request is cancelled."""
    paths = [_root(), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), TRAIN_TIMEOUT)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        process.kill()
        await process.wait()
        raise
    errors = _errors(stderr.decode("utf-8", "replace"), folder)
    if process.returncode == 1 and errors:
        raise json_error(400, "; ".join(errors), mistake)
    if process.returncode != 0:
        logger.error("API %s failed (exit %s): %s", what, process.returncode, stderr[-2000:])
        raise json_error(500, f"{what} failed on the server; its log says why", failure)


def train_command(
    project: str,
    out: Path,
    augmentation: int | None,
    *,
    force: bool = False,
    reuse_from: Path | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "chatbot", "train", "--project", project, "--out", str(out)]
    command.append("--quiet")
    if force:
        command.append("--force")
    elif reuse_from is not None:
        command += ["--reuse-from", str(reuse_from)]
    if augmentation is not None:  # 0 too: no gluing
        command += ["--augmentation", str(augmentation)]
    return command


def _errors(stderr: str, tmp: str) -> list[str]:
    """``chatbot train``'s error (its ``error:`` line and the problem lines after it), with the
    parts of the body named instead of the files they were written to."""
    lines = stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    if first is None:
        return []
    found = [lines[first][len("error: ") :], *lines[first + 1 :]]
    named = []
    for text in (line.strip() for line in found):
        for file, part in PART_FILES.items():
            text = text.replace(f"{tmp}/{file}", f"the body's {part}")
        if text:
            named.append(text.replace(tmp, "the body"))
    return named


def _root() -> str:
    """The folder that holds the ``chatbot`` package (for the training process)."""
    return str(Path(__file__).resolve().parents[2])
