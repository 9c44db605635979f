"""Small shared helpers for tests: example bots trained once per session, domains from YAML."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatbot.agent import Agent, TrainedModel
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.loader import load_project
from chatbot.project.project import Project
from chatbot.project.training_data import NLUData

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ROOT / "domains"
STARTER = ROOT / "chatbot" / "project" / "starter"


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for as long as the block runs: bound and
    not listening, so no other test's server can take it meanwhile (free_port's can be)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def raw_request(
    url: str, method: str, path: str, headers: dict[str, bytes], body: bytes = b""
) -> int:
    """A request with its header values sent byte for byte (aiohttp's client would encode them
    as UTF-8): the status the server at ``url`` (http://host:port) answers."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers.items())
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
            + head
            + b"\r\n"
            + body
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10.0)
        return int(status_line.split()[1])
    finally:
        writer.close()


def domain_of(text: str) -> Domain:
    return domain_from_dict(yaml.safe_load(text))


def example_project(name: str, *, nlu: bool = False) -> Project:
    project = load_project(DOMAINS / name)
    if not nlu:
        project.nlu = NLUData()
    return project


@functools.cache
def dialogue_model(name: str) -> TrainedModel:
    """An example bot trained without NLU (messages as /intent payloads), once per session."""
    from training.train import train_project

    return train_project(example_project(name), show_progress=False)


RULES_ONLY = "policies: [{name: RulePolicy}]\n"


def project_files(root: Path, files: dict[str, str]) -> Project:
    """Write a small bot project (relative path -> text) into ``root`` and load it."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load_project(root)


def train_files(root: Path, files: dict[str, str]) -> TrainedModel:
    """Write a small bot project (relative path -> text) into ``root`` and train it."""
    from training.train import train_project

    return train_project(project_files(root, files), show_progress=False)


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """Terminate a server started by a test (kill it after ``grace`` s), and close its output
    pipe.
    A server started with ``start_new_session=True`` is stopped with its whole process group: a
    rasa-sdk action server's Sanic processes outlive their parent when it is stopped right after
    it started, and would run on after the tests."""
    group = process.pid if _leads_a_group(process) else None
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if group is not None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break  # nothing of the group is left
            time.sleep(0.5)
    if process.stdout:
        process.stdout.close()


def _leads_a_group(process: subprocess.Popen[bytes]) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def answers(url: str) -> bool:
    """Whether a GET of ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def rasa_sdk_action_server(bot: Path, startup_seconds: float = 60.0) -> Iterator[str]:
    """A real rasa-sdk action server (``python -m rasa_sdk --actions actions``) started in the
    bot's folder, as a Rasa user starts one; yields its webhook URL, stops it on leaving."""
    import pytest

    port = free_port()
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(bot)}
    # Its output goes to a file, not a pipe: a pipe nobody reads fills up, and a server blocked
    # writing its log ignores SIGTERM.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
            cwd=bot,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with its Sanic processes (stop_process)
        )
        deadline = time.monotonic() + startup_seconds
        try:
            # Poll its /health until it answers (it starts in a second or two).
            while not answers(f"http://127.0.0.1:{port}/health"):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    pytest.fail(f"the rasa-sdk action server did not start:\n{output}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/webhook"
        finally:
            # It keeps nothing to finish, and its Sanic waits out the kept-alive connections of
            # the tests' clients on SIGTERM (20 s a server): killed after a moment.
            stop_process(process, grace=2.0)


def comparable_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what differs between two runs: times and the user messages' new ids."""
    out = []
    for event in events:
        kept = {k: v for k, v in event.items() if k not in ("timestamp", "message_id")}
        if isinstance(kept.get("parse_data"), dict):
            kept["parse_data"] = {k: v for k, v in kept["parse_data"].items() if k != "message_id"}
        out.append(kept)
    return out


async def converse(
    agent: Agent, sender: str, texts: Sequence[str]
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Say ``texts`` in turn (response variations seeded alike on every agent): the bot's texts
    after each, and every stored event of the conversation."""
    agent.processor.rng = random.Random(7)
    replies = []
    for text in texts:
        messages = await agent.handle_text(text, sender)
        replies.append([m.get("text") or "" for m in messages])
    events = (await agent.store.load(sender, all_sessions=True)).events
    return replies, [dict(e) for e in events]


@contextlib.contextmanager
def kept_logging() -> Iterator[logging.Logger]:
    """Logging as it was before the block: the root logger's handlers, their filters and level,
    and every named logger's level. ``chatbot``'s command group, run in this process
    (``CliRunner``), sets them up for a terminal, and pytest's own handlers would keep that."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {handler: list(handler.filters) for handler in handlers}
    named = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        for handler, kept in filters.items():
            handler.filters[:] = kept
        for name, named_level in named.items():
            logging.getLogger(name).setLevel(named_level)
        root.setLevel(level)


def without_waiting_on(call: Callable[[], Any], pipe: Path, seconds: float = 10.0) -> Any:
    """``call()``'s result (or its exception, raised again), or a failed test where it is still
    waiting after ``seconds``, as a reader of ``pipe`` (a named pipe nobody writes to) would:
    the pipe is then opened for writing and closed, so that the waiting reader sees its end."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # pytest's failures too: raised again in the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"reading {pipe} waited for a writer")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def code_package(root: Path, prefix: str, modules: dict[str, str]) -> str:
    """A package of a new name (``<prefix>_<hex>``) under ``root`` holding ``modules`` (module
    name -> source): a project's own code, such as custom components, that a test imports
    (its name is new for each, as imported modules stay imported for the whole run)."""
    package = f"{prefix}_{uuid.uuid4().hex[:8]}"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / package / f"{module}.py").write_text(source)
    return package


def json_printed_by(script: str, cwd: Path) -> Any:
    """Run ``script`` in a fresh Python process in ``cwd`` (the project's code importable only as
    a served model would find it) and read the JSON of its last printed line."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
