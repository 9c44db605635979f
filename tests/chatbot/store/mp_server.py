"""Helpers for the multi-process store tests: ``chatbot run`` as a subprocess, endpoints.yml files
for it, REST messages tagged so that the store can be checked against what the clients saw, and
the consistency check of a stored conversation.

Every message a test sends carries ``metadata: {"tag": "<client>/<n>"}``; the REST channel keeps a
message's metadata in its user event, so each stored user event names the message it records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml
from sqlalchemy import make_url

from chatbot.conversation.messages import bot_messages
from tests.helpers import DOMAINS, ROOT, free_port
from tests.services import asyncpg_dsn
from training.benchmarks.services import postgres_block, redis_block

WEBHOOK = "/webhooks/rest/webhook"
# A slow, shared machine: a server may take many seconds to import torch and start.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# One message may wait behind a conversation's other messages and a busy CPU.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=180.0)
INTENTS = ("/greet", "/mood_great", "/goodbye")


# ------------------------------------------------------------------------------- server processes


def copy_moodbot(folder: Path) -> Path:
    """A copy of the moodbot project (a server may write into its project folder)."""
    project = folder / "moodbot"
    shutil.copytree(DOMAINS / "moodbot", project)
    return project


def write_endpoints(
    path: Path,
    *,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    key_prefix: str = "",
    postgres_port: int | None = None,
    lock_lifetime: float | None = None,
    wait_timeout: float | None = None,
) -> Path:
    """endpoints.yml as Rasa writes it: ``tracker_store: {type: sql, dialect: postgresql, url:
    <host>, port, db, username}`` and ``lock_store: {type: redis, url: <host>, port, db,
    key_prefix}``. ``postgres_port`` replaces the database's port (a proxy, a closed port)."""
    blocks: dict[str, Any] = {}
    if postgres_url is not None:  # or a MySQL database's URL: the same block, dialect mysql
        blocks["tracker_store"] = postgres_block(postgres_url)
        if make_url(postgres_url).get_backend_name() == "mysql":
            blocks["tracker_store"] |= {"dialect": "mysql", "port": make_url(postgres_url).port}
        if postgres_port is not None:
            blocks["tracker_store"]["port"] = postgres_port
    if redis_url is not None:
        # The factory makes keys "<key_prefix>:lock:..."; the test's prefix ends with ":".
        lock = redis_block(redis_url, key_prefix.rstrip(":"))
        if lock_lifetime is not None:
            lock["lock_lifetime"] = lock_lifetime
        if wait_timeout is not None:
            lock["wait_timeout"] = wait_timeout
        blocks["lock_store"] = lock
    path.write_text(yaml.safe_dump(blocks, sort_keys=False))
    return path


@dataclass
class Server:
    """One ``chatbot run`` process, its output in ``log_path``."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, connections cut mid-request."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or None when the process is still running after ``timeout``."""
        give_up = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
        return self.process.poll()

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if await self.wait_exit(STOP_TIMEOUT) is None:
                self.kill()
                await self.wait_exit(STOP_TIMEOUT)


@dataclass
class ServerLauncher:
    """Starts ``chatbot run`` processes in ``folder`` and stops every one of them at the end."""

    folder: Path
    project: Path
    model: Path
    started: list[Server] = field(default_factory=list)

    def spawn(self, endpoints: Path, *extra: str, port: int | None = None) -> Server:
        """Start a server without waiting for it."""
        port = port or free_port()
        log_path = self.folder / f"server-{len(self.started)}-{port}.log"
        command = [
            sys.executable,
            "-m",
            "chatbot",
            "run",
            "--project",
            str(self.project),
            "--model",
            str(self.model),
            "--endpoints",
            str(endpoints),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # Up to 20 messages a conversation in a few seconds: above the default 60/min.
            "--rate-limit",
            "off",
            *extra,
        ]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            # One thread for torch: the moodbot's LSTM step is tiny, and on a busy 2-core
            # machine torch's default of a thread per core costs ~15x the CPU per message.
            "OMP_NUM_THREADS": "1",
            # The temporary files of a server (--workers' shared folder) in the test's folder:
            # a supervisor a test kills has no chance to remove its own.
            "TMPDIR": str(self.folder),
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder
            )
        server = Server(port, process, log_path)
        self.started.append(server)
        return server

    async def start(self, endpoints: Path, *extra: str, port: int | None = None) -> Server:
        """Start a server and wait until its REST channel answers."""
        for _attempt in range(3):
            server = self.spawn(endpoints, *extra, port=port)
            if await wait_ready(server):
                return server
            if port is None and "address already in use" in server.log().lower():
                continue  # another process took the free port meanwhile: another one
            break
        pytest.fail(
            f"chatbot run did not come up on port {server.port} within {START_TIMEOUT:.0f} s "
            f"(exit status {server.process.poll()}); its output:\n{server.log_tail()}",
            pytrace=False,
        )

    async def stop_all(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.started))


async def wait_ready(server: Server, timeout: float = START_TIMEOUT) -> bool:
    """True once the server answers GET /webhooks/rest/; False when it exits first or the time
    runs out."""
    give_up = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
        while time.monotonic() < give_up:
            if server.process.poll() is not None:
                return False
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(f"{server.url}/webhooks/rest/") as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(0.05)
    return False


@contextlib.asynccontextmanager
async def client_session(limit: int = 256) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        yield session


# ----------------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Sent:
    """One message a client sent and what came back (``status`` None: no answer at all)."""

    conversation_id: str
    tag: str
    text: str
    status: int | None
    reply: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status == 200


def tag_of(client: int, n: int) -> str:
    return f"{client}/{n}"


def client_and_n(tag: str) -> tuple[int, int]:
    client, n = tag.split("/")
    return int(client), int(n)


async def send(
    session: aiohttp.ClientSession, base_url: str, conversation_id: str, text: str, tag: str
) -> Sent:
    body = {"sender": conversation_id, "message": text, "metadata": {"tag": tag}}
    async with session.post(f"{base_url}{WEBHOOK}", json=body) as response:
        reply = await response.json(content_type=None)
        return Sent(conversation_id, tag, text, response.status, reply, dict(response.headers))


# ------------------------------------------------------------------------------ the stored log


@dataclass(frozen=True)
class StoredTurn:
    """A user event and the events after it, up to and including the bot's ``action_listen``."""

    seq: int
    tag: str
    text: str
    events: list[dict[str, Any]]

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The bot messages of the turn, as the REST channel sends them."""
        return bot_messages(self.events, conversation_id)


async def read_store(url: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every conversation's (seq, event) rows straight from the database (PostgreSQL or MySQL),
    checking on the way that each conversation row's ``next_seq`` is one past its last event."""
    rows, heads = await (_mysql_rows(url) if "mysql" in url.split(":")[0] else _postgres_rows(url))
    stored: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for conversation_id, seq, data in rows:
        stored.setdefault(conversation_id, []).append((seq, json.loads(data)))
    for conversation_id, next_seq in heads:
        events = stored.get(conversation_id, [])
        last = events[-1][0] if events else -1
        assert next_seq == last + 1, (
            f"conversation {conversation_id}: next_seq {next_seq} but last event seq {last}"
        )
    return stored


Rows = tuple[list[tuple[str, int, str]], list[tuple[str, int]]]


async def _postgres_rows(url: str) -> Rows:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT conversation_id, seq, data FROM events ORDER BY 1, 2")
        heads = await conn.fetch("SELECT id, next_seq FROM conversations")
    finally:
        await conn.close()
    return [tuple(row) for row in rows], [tuple(head) for head in heads]


async def _mysql_rows(url: str) -> Rows:
    """MySQL keeps conversation ids as their UTF-8 bytes."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from chatbot.store.sql import async_url

    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT conversation_id, seq, data FROM events ORDER BY 1, 2")
            )
            heads = await conn.execute(text("SELECT id, next_seq FROM conversations"))
            return (
                [(bytes(c).decode(), seq, data) for c, seq, data in rows],
                [(bytes(c).decode(), next_seq) for c, next_seq in heads],
            )
    finally:
        await engine.dispose()


def check_log(conversation_id: str, rows: list[tuple[int, dict[str, Any]]]) -> list[StoredTurn]:
    """The conversation's user turns, after checking that its log is whole.

    - seqs are 0, 1, 2, ... with no gap and no repeat;
    - the log is a sequence of runs each ending with ``action_listen``: a session start
      (``action_session_start``, ``session_started``, ..., ``action_listen``) or a user turn (one
      user event, the bot's actions and messages, one ``action_listen``); a turn is written in
      one transaction, so a log that ends in the middle of a run holds half a turn.
    """
    seqs = [seq for seq, _ in rows]
    assert seqs == list(range(len(rows))), f"{conversation_id}: seqs with gaps: {seqs}"
    turns: list[StoredTurn] = []
    run: list[tuple[int, dict[str, Any]]] = []
    for seq, event in rows:
        run.append((seq, event))
        if event.get("event") == "action" and event.get("name") == "action_listen":
            turns.extend(_check_run(conversation_id, run))
            run = []
    assert not run, (
        f"{conversation_id}: half a turn at the end of the log (seqs {run[0][0]}..{run[-1][0]}: "
        f"{[_describe(e) for _, e in run]})"
    )
    return turns


def _check_run(conversation_id: str, run: list[tuple[int, dict[str, Any]]]) -> list[StoredTurn]:
    if run[0][1].get("event") == "slot" and run[0][1].get("name") == "session_started_metadata":
        run = run[1:]  # the starting message's metadata, set before the session starts
    first_seq, first = run[0]
    kinds = [_describe(e) for _, e in run]
    if first.get("event") == "action" and first.get("name") == "action_session_start":
        assert not any(e.get("event") == "user" for _, e in run), (
            f"{conversation_id}: a user event inside a session start at seq {first_seq}: {kinds}"
        )
        return []
    assert first.get("event") == "user", (
        f"{conversation_id}: a turn at seq {first_seq} does not start with a user event: {kinds}"
    )
    users = [seq for seq, e in run if e.get("event") == "user"]
    assert users == [first_seq], (
        f"{conversation_id}: user events at seqs {users} without the bot listening in between "
        f"(a turn answered zero times, or two turns interleaved): {kinds}"
    )
    tag = (first.get("metadata") or {}).get("tag")
    assert isinstance(tag, str), f"{conversation_id}: user event at seq {first_seq} has no tag"
    return [StoredTurn(first_seq, tag, str(first.get("text")), [e for _, e in run[1:]])]


def _describe(event: Mapping[str, Any]) -> str:
    name = event.get("name") or event.get("text") or ""
    return f"{event.get('event')}:{name}" if name else str(event.get("event"))


def check_answers(conversation_id: str, turns: list[StoredTurn], sent: Iterable[Sent]) -> None:
    """Every answered message is stored once, with the very reply its client got; nothing is
    stored that was not sent; every client's messages are stored in the order it sent them."""
    sent_by_tag = {s.tag: s for s in sent}
    stored_tags = Counter(turn.tag for turn in turns)
    repeated = sorted(tag for tag, count in stored_tags.items() if count > 1)
    assert not repeated, f"{conversation_id}: messages stored more than once: {repeated}"
    unknown = sorted(set(stored_tags) - set(sent_by_tag))
    assert not unknown, f"{conversation_id}: stored messages nobody sent: {unknown}"
    missing = sorted(tag for tag, s in sent_by_tag.items() if s.answered and tag not in stored_tags)
    assert not missing, f"{conversation_id}: answered messages missing from the store: {missing}"
    for turn in turns:
        message = sent_by_tag[turn.tag]
        assert turn.text == message.text, (
            f"{conversation_id}: message {turn.tag} stored as {turn.text!r}, sent {message.text!r}"
        )
        if message.answered:
            assert turn.messages(conversation_id) == message.reply, (
                f"{conversation_id}: message {turn.tag} got {message.reply} but the store "
                f"holds the answer {turn.messages(conversation_id)}"
            )
    by_client: dict[int, list[int]] = {}
    for turn in turns:
        client, n = client_and_n(turn.tag)
        by_client.setdefault(client, []).append(n)
    for client, numbers in by_client.items():
        assert numbers == sorted(numbers), (
            f"{conversation_id}: client {client}'s messages stored in the order {numbers}"
        )


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session", name="moodbot_model_file")
def moodbot_model_file_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The moodbot without NLU (``/intent`` payloads), trained once per session, as a file."""
    from tests.helpers import dialogue_model

    path = tmp_path_factory.mktemp("mp-model") / "moodbot.model"
    dialogue_model("moodbot").to_file(path)
    return path


@pytest.fixture(name="launcher")
async def launcher_fixture(
    tmp_path: Path, moodbot_model_file: Path
) -> AsyncIterator[ServerLauncher]:
    """Starts ``chatbot run`` processes for the moodbot; stops them all after the test."""
    servers = ServerLauncher(tmp_path, copy_moodbot(tmp_path), moodbot_model_file)
    try:
        yield servers
    finally:
        await servers.stop_all()
