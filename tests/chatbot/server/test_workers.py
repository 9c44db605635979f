"""``chatbot run --workers``: several server processes on one port, as real processes.

The conversations of many clients, whose requests land on either worker, are stored whole; a
scrape of /metrics counts every worker; PUT /model reaches every worker, also one started after a
worker was killed; SIGTERM stops them all; the socket.io channel works across workers; mistakes
are said once, before anything serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import yaml

from chatbot.errors import ConfigError
from chatbot.server.settings import ServerSettings
from chatbot.server.workers import SPREAD, listen, workers_wanted
from tests.chatbot.store.mp_server import (  # noqa: F401 (fixtures)
    INTENTS,
    Sent,
    Server,
    ServerLauncher,
    check_answers,
    check_log,
    launcher_fixture,
    moodbot_model_file_fixture,
    read_store,
    send,
    tag_of,
    write_endpoints,
)
from tests.connectors.test_chat_page import open_chat, reloaded
from tests.connectors.test_chat_page import say as say_on_page
from tests.helpers import ROOT

WAIT = 30.0
WORKER_PID = re.compile(r"worker (\d+): pid (\d+)")


def fresh_connections() -> aiohttp.ClientSession:
    """Every request on a new connection: the kernel hands each to one of the workers."""
    connector = aiohttp.TCPConnector(force_close=True, limit=32)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def wait_for(what: str, check: Any, timeout: float = WAIT) -> Any:
    give_up = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > give_up:
            pytest.fail(f"{what}: not within {timeout:.0f} s", pytrace=False)
        await asyncio.sleep(0.1)


async def all_ready(server: Server, count: int) -> None:
    ready = re.compile(rf"^Bot '.*' is up in [0-9.]+ s with {count} workers: ", re.M)

    async def check() -> bool:
        return ready.search(server.log()) is not None

    await wait_for("the supervisor's ready line", check)


def worker_pids(server: Server) -> dict[int, int]:
    """The workers' pids as the supervisor logged them (the latest per worker)."""
    return {int(i): int(pid) for i, pid in WORKER_PID.findall(server.log())}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def status_files(session: aiohttp.ClientSession, url: str, times: int) -> set[str]:
    files = set()
    for _ in range(times):
        async with session.get(f"{url}/status") as response:
            assert response.status == 200, await response.text()
            files.add((await response.json())["model_file"])
    return files


async def converse(
    server: Server, ids: list[str], *, clients: int, messages: int
) -> dict[str, list[Sent]]:
    """``clients`` clients per conversation, each sending ``messages`` messages one after the
    other, every request on a new connection; what each conversation's clients sent, all
    answered."""

    async def client(session: aiohttp.ClientSession, conversation_id: str, k: int) -> list[Sent]:
        results = []
        for n in range(messages):
            text = INTENTS[(k + n) % len(INTENTS)]
            results.append(await send(session, server.url, conversation_id, text, tag_of(k, n)))
        return results

    async with fresh_connections() as session:
        per_client = await asyncio.gather(
            *(client(session, c, k) for c in ids for k in range(clients))
        )
    sent: dict[str, list[Sent]] = {conversation_id: [] for conversation_id in ids}
    for result in (r for results in per_client for r in results):
        assert result.status == 200, (result, server.log_tail())
        sent[result.conversation_id].append(result)
    return sent


pytestmark = [pytest.mark.services, pytest.mark.slow]


async def test_two_workers_share_conversations_metrics_and_stop_together(
    launcher: ServerLauncher,
    postgres_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> None:
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        postgres_url=postgres_url,
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
    )
    server = await launcher.start(endpoints, "--workers", "2")
    await all_ready(server, 2)
    ids = [f"user-{i:02d}" for i in range(12)]
    sent = await converse(server, ids, clients=3, messages=4)
    stored = await read_store(postgres_url)
    for conversation_id in ids:
        turns = check_log(conversation_id, stored[conversation_id])
        assert len(turns) == 12
        check_answers(conversation_id, turns, sent[conversation_id])
    log = server.log()
    assert "[worker 1] turn conversation=" in log and "[worker 2] turn conversation=" in log

    total = len(ids) * 3 * 4

    async def counted() -> bool:
        async with fresh_connections() as session, session.get(f"{server.url}/metrics") as got:
            text = await got.text()
        match = re.search(r'chatbot_messages_total\{channel="rest",outcome="ok"\} (\S+)', text)
        return match is not None and float(match.group(1)) == total

    await wait_for(f"/metrics counting all {total} messages of both workers", counted)

    pids = worker_pids(server)
    assert sorted(pids) == [1, 2] and all(alive(pid) for pid in pids.values())
    server.process.send_signal(signal.SIGTERM)
    assert await server.wait_exit(WAIT) == 0, server.log_tail()
    assert not any(alive(pid) for pid in pids.values())
    assert "[worker 1] shutting down" in server.log() and "[worker 2] shutting down" in server.log()


def read_sqlite(path: Path) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every conversation's (seq, event) rows in the SQLite store, as ``read_store`` reads them."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT conversation_id, seq, data FROM events ORDER BY 1, 2").fetchall()
        heads = dict(db.execute("SELECT id, next_seq FROM conversations").fetchall())
    stored: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for conversation_id, seq, data in rows:
        stored.setdefault(conversation_id, []).append((seq, json.loads(data)))
    for conversation_id, next_seq in heads.items():
        assert next_seq == len(stored.get(conversation_id, [])), conversation_id
    return stored


async def test_without_redis_the_workers_lock_conversations_through_a_file(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    """The default SQLite store and no lock_store: several clients of one conversation, their
    requests spread over both workers, each message answered once, in order, never half a turn."""
    endpoints = write_endpoints(tmp_path / "endpoints.yml")
    server = await launcher.start(endpoints, "--workers", "2")
    await all_ready(server, 2)
    assert "locks through a file" in server.log()
    ids = [f"user-{i:02d}" for i in range(10)]
    sent = await converse(server, ids, clients=4, messages=5)
    stored = read_sqlite(launcher.project / ".chatbot" / "conversations.db")
    interleaved = 0
    for conversation_id in ids:
        turns = check_log(conversation_id, stored[conversation_id])
        assert len(turns) == 20
        check_answers(conversation_id, turns, sent[conversation_id])
        clients = [turn.tag.split("/")[0] for turn in turns]
        interleaved += sum(a != b for a, b in itertools.pairwise(clients)) > 3
    assert interleaved >= len(ids) // 2  # the clients did race each other
    log = server.log()
    assert "[worker 1] turn conversation=" in log and "[worker 2] turn conversation=" in log


async def test_put_model_reaches_every_worker_and_a_restarted_one(
    launcher: ServerLauncher, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml", redis_url=redis_url, key_prefix=redis_key_prefix
    )
    server = await launcher.start(endpoints, "--workers", "2", "--enable-api")
    await all_ready(server, 2)
    second = tmp_path / "second.model"
    second.write_bytes(launcher.model.read_bytes())
    async with fresh_connections() as session:
        assert await status_files(session, server.url, 6) == {str(launcher.model.resolve())}
        body = {"model_file": str(second)}
        async with session.put(f"{server.url}/model", json=body) as response:
            assert response.status == 204, await response.text()
        # Answered once both serve it: no request after the 204 sees the old model.
        assert await status_files(session, server.url, 6) == {str(second.resolve())}

        killed = worker_pids(server)[1]
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> bool:
            pids = worker_pids(server)
            return pids.get(1) not in (None, killed) and "starting another" in server.log()

        await wait_for("worker 1 started again", replaced)
        answers = []
        for _ in range(10):  # the new worker serves what the others serve, once it is up
            async with session.get(f"{server.url}/status") as response:
                answers.append((response.status, (await response.json()).get("model_file")))
        assert answers == [(200, str(second.resolve()))] * 10, answers

        async with session.delete(f"{server.url}/model") as response:
            assert response.status == 204
        for _ in range(4):
            async with session.get(f"{server.url}/status") as response:
                assert response.status == 409  # no model loaded, in every worker
        # A model server to follow is one worker's: refused, saying why.
        body = {"model_server": {"url": "http://127.0.0.1:9/models/default"}}
        async with session.put(f"{server.url}/model", json=body) as response:
            assert response.status == 400
            assert "--workers" in (await response.json())["message"]


async def test_socketio_across_workers(
    launcher: ServerLauncher, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    """Websockets only; a session key one worker gave resumes the conversation on any; an
    external event reaches the conversation's socket whichever worker handles it (Redis)."""
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml", redis_url=redis_url, key_prefix=redis_key_prefix
    )
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(yaml.safe_dump({"rest": None, "socketio": None}))
    server = await launcher.start(
        endpoints, "--workers", "2", "--enable-api", "--credentials", str(credentials)
    )
    await all_ready(server, 2)
    assert "socket.io clients must connect over websockets only" in server.log()

    polling = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await polling.connect(server.url, transports=["polling"], wait_timeout=5)

    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirms: asyncio.Queue[str] = asyncio.Queue()
    chat = socketio.AsyncClient(reconnection=False)
    chat.on("bot_uttered", received.put)
    chat.on("session_confirm", confirms.put)
    await chat.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
    try:
        await chat.emit("session_request", {"session_id": None})
        key = await asyncio.wait_for(confirms.get(), WAIT)
        ack = await chat.call("user_uttered", {"message": "/greet"}, timeout=WAIT)
        assert ack == {"ok": True}
        assert (await asyncio.wait_for(received.get(), WAIT))["text"]
        conversation = key.rpartition(".")[0]

        for _ in range(8):  # other sockets, on either worker, resume it with the key
            other = socketio.AsyncClient(reconnection=False)
            other_confirms: asyncio.Queue[str] = asyncio.Queue()
            other.on("session_confirm", other_confirms.put)
            await other.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
            await other.emit("session_request", {"session_id": key})
            assert await asyncio.wait_for(other_confirms.get(), WAIT) == key
            await other.disconnect()

        url = f"{server.url}/conversations/{conversation}/trigger_intent?output_channel=latest"
        async with fresh_connections() as session:
            for _ in range(16):  # on new connections: both workers handle some of them
                async with session.post(url, json={"name": "bot_challenge"}) as response:
                    assert response.status == 200, await response.text()
                emitted = await asyncio.wait_for(received.get(), WAIT)
                assert emitted["text"].startswith("I am a bot")
    finally:
        await chat.disconnect()
    log = server.log()
    handled = {i for i in ("1", "2") if f"[worker {i}] turn conversation={conversation}" in log}
    assert handled == {"1", "2"}, server.log_tail()


async def test_workers_whose_supervisor_was_killed_stop_by_themselves(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    server = await launcher.start(write_endpoints(tmp_path / "endpoints.yml"), "--workers", "2")
    await all_ready(server, 2)
    pids = worker_pids(server)
    server.kill()  # SIGKILL: the supervisor cannot pass anything on

    async def gone() -> bool:
        return not any(alive(pid) for pid in pids.values())

    await wait_for("the orphaned workers to stop", gone)
    assert server.log().count("is gone: stopping") == 2
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


async def test_a_worker_that_cannot_start_stops_all_with_its_error_said_once(
    launcher: ServerLauncher, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    with contextlib.closing(socket.socket()) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        postgres_url=f"postgresql://postgres@127.0.0.1:{port}/test",
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
    )
    server = launcher.spawn(endpoints, "--workers", "2", "--wait-for-store", "0")
    assert await server.wait_exit(120) == 1, server.log_tail()
    errors = [line for line in server.log().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, server.log()
    assert str(port) in errors[0]


# ------------------------------------------------------------------------ without processes


def test_workers_need_stores_they_share(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("SANIC_WORKERS", raising=False)
    settings = ServerSettings(project_dir=tmp_path, workers=3)
    assert workers_wanted(settings) == 3  # no lock_store: a lock file, SQLite: one file
    (tmp_path / "endpoints.yml").write_text("lock_store:\n  type: in_memory\n")
    with pytest.raises(ConfigError, match=r"endpoints.yml:1: lock_store: type in_memory.*redis"):
        workers_wanted(settings)
    (tmp_path / "endpoints.yml").write_text(
        "lock_store:\n  type: redis\ntracker_store:\n  type: in_memory\n"
    )
    with pytest.raises(ConfigError, match=r"endpoints.yml:3: tracker_store: type in_memory"):
        workers_wanted(settings)
    # Without a lock_store (a lock file) an in-memory store is refused too: each process
    # answered from its own half of a conversation.
    (tmp_path / "endpoints.yml").write_text("tracker_store:\n  type: in_memory\n")
    with pytest.raises(ConfigError, match=r"endpoints.yml:1: tracker_store: type in_memory"):
        workers_wanted(settings)
    (tmp_path / "endpoints.yml").write_text("lock_store:\n  type: redis\n")
    assert workers_wanted(settings) == 3
    assert workers_wanted(ServerSettings(project_dir=tmp_path, workers=1)) == 1


def test_sanic_workers_as_rasa_reads_it(
    tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServerSettings(project_dir=tmp_path)
    monkeypatch.delenv("SANIC_WORKERS", raising=False)
    assert workers_wanted(settings) == 1
    monkeypatch.setenv("SANIC_WORKERS", "4")
    assert workers_wanted(settings) == 4
    (tmp_path / "endpoints.yml").write_text("lock_store:\n  type: in_memory\n")
    assert workers_wanted(settings) == 1  # locks of each process's own: ignored, as Rasa does
    assert "SANIC_WORKERS=4: " in caplog.text and "type in_memory" in caplog.text
    monkeypatch.setenv("SANIC_WORKERS", "four")
    assert workers_wanted(settings) == 1
    assert "SANIC_WORKERS=four is not a whole number" in caplog.text
    # --workers wins over the environment, and is refused where SANIC_WORKERS is ignored.
    (tmp_path / "endpoints.yml").write_text("lock_store:\n  type: redis\n")
    assert workers_wanted(ServerSettings(project_dir=tmp_path, workers=2)) == 2


def test_workers_are_at_most_4_per_core(
    tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """`--workers 10000` (a slip) started processes until the machine gave out."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    (tmp_path / "endpoints.yml").write_text("lock_store:\n  type: redis\n")
    assert workers_wanted(ServerSettings(project_dir=tmp_path, workers=8)) == 8
    with pytest.raises(ConfigError, match=r"--workers 9: at most 8 on this machine \(4 per core\)"):
        workers_wanted(ServerSettings(project_dir=tmp_path, workers=9))
    with pytest.raises(ConfigError, match="--workers 1000000000000000000000000000000000000000: "):
        workers_wanted(ServerSettings(project_dir=tmp_path, workers=10**400))
    monkeypatch.setenv("SANIC_WORKERS", "10000")
    assert workers_wanted(ServerSettings(project_dir=tmp_path)) == 8
    assert "SANIC_WORKERS=10000: more than 8 (4 per core); 8 serve" in caplog.text


def test_the_cli_says_what_is_missing_before_anything_starts(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    project.mkdir()
    (project / "endpoints.yml").write_text("lock_store:\n  type: in_memory\n")
    done = subprocess.run(
        [sys.executable, "-m", "chatbot", "run", "--project", str(project), "--workers", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: --workers 2: ")
    assert "endpoints.yml:1: lock_store: type in_memory" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("spread", [True, False], ids=["own sockets", "one shared socket"])
def test_the_port_is_taken_once_and_held(spread: bool) -> None:
    if spread and not SPREAD:
        pytest.skip("SO_REUSEPORT spreads connections on Linux only")
    listener = listen("127.0.0.1", 0, spread=spread)
    first, second = listener.open(), listener.open()  # two workers
    try:
        assert (first is second) == (not spread)
        with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{listener.port}: "):
            listen("127.0.0.1", listener.port, spread=spread)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", listener.port))
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
            pass
    finally:
        first.close()
        second.close()
        listener.close()


async def test_the_chat_page_across_workers(
    launcher: ServerLauncher,
    browser: Any,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> None:
    """Our chat page in Chromium behind two workers: it connects over websockets only, and each
    reload (a new connection, to either worker) resumes the conversation."""
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml", redis_url=redis_url, key_prefix=redis_key_prefix
    )
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(yaml.safe_dump({"rest": None, "socketio": None}))
    server = await launcher.start(endpoints, "--workers", "2", "--credentials", str(credentials))
    await all_ready(server, 2)
    page = await open_chat(browser, server.url)
    assert await page.evaluate("document.body.dataset.transports") == "websocket"
    await say_on_page(page, "/greet")
    for n in range(4):
        shown = await page.locator(".message").all_inner_texts()
        assert await reloaded(page, len(shown)) == shown
        await say_on_page(page, INTENTS[n % len(INTENTS)])
    await page.context.close()
    assert "Invalid transport" not in server.log()  # no long-polling request was made
