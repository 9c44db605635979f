"""``chatbot run`` as a real process on a real socket: startup, the API bound to loopback without
authentication, and a graceful SIGTERM (stop accepting, finish the message in flight, close the
store)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chatbot.agent import TrainedModel
from chatbot.server.app import build_agent
from chatbot.server.settings import ServerSettings
from chatbot.store import SQLStore
from tests.helpers import ROOT, free_port, raw_request

WAIT = 120.0  # seconds the process may take to start on a busy machine


class Output:
    """The lines a process writes to one stream, and a way to wait for one."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip())
                self._changed.notify_all()

    async def wait_for(self, needle: str, timeout: float = WAIT) -> str:
        def found() -> bool:
            return any(needle in line for line in self.lines)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(found), timeout)
        return next(line for line in self.lines if needle in line)

    async def close(self) -> None:
        await self._task

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class ActionServer:
    """A rasa-sdk-speaking action server that holds each call until released."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/webhook", self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        call = await request.json()
        self.arrived.set()
        await self.release.wait()
        slots = call["tracker"]["slots"]
        return web.json_response(
            {
                "events": [{"event": "slot", "name": "cuisine", "value": slots["cuisine"]}],
                "responses": [],
            }
        )


@pytest.fixture
async def action_server() -> AsyncIterator[tuple[ActionServer, str]]:
    server = ActionServer()
    async with TestServer(server.app, host="127.0.0.1") as test_server:
        yield server, str(test_server.make_url("/webhook"))
        server.release.set()


def write_project(folder: Path, model: TrainedModel, action_url: str) -> None:
    (folder / "models").mkdir(parents=True)
    model.to_file(folder / "models" / "restaurant.model")
    (folder / "credentials.yml").write_text("rest:\n")
    (folder / "endpoints.yml").write_text(f"action_endpoint:\n  url: {action_url}\n")


async def start_chatbot(
    project: Path, port: int, *args: str, import_times: bool = False
) -> tuple[asyncio.subprocess.Process, Output, Output, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    if import_times:  # Python lists every module it imports on stderr
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatbot",
        "run",
        "--project",
        str(project),
        "--port",
        str(port),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = Output(process.stdout), Output(process.stderr)
    try:
        await stdout.wait_for("is up")
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"chatbot run did not start:\n{stderr.text}")
    return process, stdout, stderr, time.perf_counter() - started


FORGED = "turn conversation=forged channel=rest events=1 seconds=0.001"


async def test_sigterm_finishes_the_message_in_flight(
    tmp_path: Path,
    restaurant_model: TrainedModel,
    action_server: tuple[ActionServer, str],
) -> None:
    fake, url = action_server
    write_project(tmp_path, restaurant_model, url)
    port = free_port()
    process, stdout, stderr, seconds = await start_chatbot(
        tmp_path, port, "--rate-limit", "off", import_times=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert "is up in" in await stdout.wait_for("is up")
        async with aiohttp.ClientSession() as session:
            greet = {"sender": "alice", "message": "/greet"}
            async with session.post(f"{base}/webhooks/rest/webhook", json=greet) as response:
                assert response.status == 200
                assert (await response.json())[0]["recipient_id"] == "alice"
            # A sender id that would forge a log line of its own, were it written as it is.
            forger = {"sender": f"mallory\n{FORGED}", "message": "/greet"}
            async with session.post(f"{base}/webhooks/rest/webhook", json=forger) as response:
                assert response.status == 200

            # A message whose turn waits for the action server...
            booking = {"sender": "alice", "message": '/request_restaurant{"cuisine": "thai"}'}
            in_flight = asyncio.create_task(
                session.post(f"{base}/webhooks/rest/webhook", json=booking)
            )
            await asyncio.wait_for(fake.arrived.wait(), WAIT)

            # ... is in flight when SIGTERM comes: no new connections, then it finishes.
            process.send_signal(signal.SIGTERM)
            await stderr.wait_for("shutting down")
            async with aiohttp.ClientSession() as other:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await other.get(f"{base}/health")
            # A second SIGTERM changes nothing (it raised in the middle of the shutdown: a
            # traceback, the message lost, exit status 1).
            process.send_signal(signal.SIGTERM)
            await stderr.wait_for("already shutting down")
            fake.release.set()
            response = await asyncio.wait_for(in_flight, WAIT)
            assert response.status == 200
            texts = [m.get("text") for m in await response.json()]
            assert any("people" in t for t in texts if t)  # the form asks the next slot
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await stdout.close()
        await stderr.close()

    # The store was closed cleanly with every event of the finished turn in it.
    async with SQLStore(f"sqlite:///{tmp_path / '.chatbot' / 'conversations.db'}") as store:
        events = (await store.load("alice")).events
    assert [e["event"] for e in events].count("user") == 2
    assert events[-1] == {**events[-1], "event": "action", "name": "action_listen"}
    assert "Traceback" not in stderr.text
    assert "turn conversation=mallory\\nturn conversation=forged" in stderr.text
    assert not any(line.startswith(FORGED) for line in stderr.text.splitlines())
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.text.splitlines()}
    assert "aiohttp" in imported and "chatbot.server.app" in imported  # the list is complete
    assert "torch" not in imported  # models are served in numpy: no second spent importing it
    print(f"chatbot run: ready to answer {seconds:.2f} s after the process started")


async def test_ctrl_c_twice_stops_at_once_without_tracebacks(
    tmp_path: Path, restaurant_model: TrainedModel, action_server: tuple[ActionServer, str]
) -> None:
    fake, url = action_server
    write_project(tmp_path, restaurant_model, url)
    port = free_port()
    process, stdout, stderr, _ = await start_chatbot(tmp_path, port)
    try:
        async with aiohttp.ClientSession() as session:
            booking = {"sender": "bo", "message": '/request_restaurant{"cuisine": "thai"}'}
            in_flight = asyncio.create_task(
                session.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook", json=booking)
            )
            await asyncio.wait_for(fake.arrived.wait(), WAIT)
            process.send_signal(signal.SIGINT)
            await stderr.wait_for("shutting down")
            process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(process.wait(), WAIT) == 130
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(in_flight, WAIT)
    finally:
        fake.release.set()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await stdout.close()
        await stderr.close()
    assert "stopping at once" in stderr.text
    assert "Traceback" not in stderr.text


async def test_an_open_api_listens_on_loopback_only(
    tmp_path: Path, restaurant_model: TrainedModel, action_server: tuple[ActionServer, str]
) -> None:
    write_project(tmp_path, restaurant_model, action_server[1])
    port = free_port()
    process, stdout, stderr, _ = await start_chatbot(
        tmp_path, port, "--enable-api", "--host", "0.0.0.0"
    )
    try:
        warning = await stderr.wait_for("without --auth-token")
        assert "127.0.0.1 only" in warning
        assert f"http://127.0.0.1:{port}" in await stdout.wait_for("is up")
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{port}/status")
            assert response.status == 200
        # A header past aiohttp's 8 KB: a 400, and one line in the log, not an ERROR with a
        # traceback holding the start of the header (a cookie, a token).
        secret = b"s3cr3t" + b"a" * 9000
        base = f"http://127.0.0.1:{port}"
        assert await raw_request(base, "GET", "/health", {"Cookie": secret}) == 400
        await stderr.wait_for("a malformed HTTP request was refused with a 400 (LineTooLong)")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        assert "Traceback" not in stderr.text and "s3cr3t" not in stderr.text
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await stdout.close()
        await stderr.close()


async def test_unknown_channel_stops_the_start_with_one_clear_line(
    tmp_path: Path, restaurant_model: TrainedModel, action_server: tuple[ActionServer, str]
) -> None:
    write_project(tmp_path, restaurant_model, action_server[1])
    (tmp_path / "credentials.yml").write_text("rest:\nfax:\n  number: 1\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatbot",
        "run",
        "--project",
        str(tmp_path),
        "--port",
        str(free_port()),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 1
    message = err.decode()
    assert "unknown channel 'fax'" in message and "credentials.yml:2" in message
    assert "rest" in message and "Traceback" not in message


async def test_rasa_endpoint_blocks_we_do_not_use_are_named_at_start(
    tmp_path: Path, restaurant_model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """An event_broker block of a type we lack starts the server, named with its file and line as
    ignored; nlg and models blocks are used."""
    write_project(tmp_path, restaurant_model, "http://127.0.0.1:9/webhook")
    (tmp_path / "endpoints.yml").write_text(
        "action_endpoint:\n  url: http://127.0.0.1:9/webhook\n"
        "nlg:\n  url: http://127.0.0.1:9/nlg\n"
        "event_broker:\n  type: kafka\n"
        "models:\n  url: http://127.0.0.1:9/models/default\n"
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.server.app"):
        agent = build_agent(ServerSettings(project_dir=tmp_path))
    assert agent.nlg is not None and agent.nlg.url == "http://127.0.0.1:9/nlg"
    await agent.close()
    warned = caplog.text
    assert "nlg" not in warned and "models" not in warned
    kafka = "endpoints.yml:5: event_broker: type 'kafka' is not provided (only pika and sql)"
    assert kafka in warned
    assert "action_endpoint" not in warned


async def test_status_names_the_newest_model_it_serves_without_model_given(
    tmp_path: Path, restaurant_model: TrainedModel
) -> None:
    """Rasa's `/status` gives the served model's file; started without --model (the usual
    case), it said null."""
    from aiohttp.test_utils import TestClient

    from chatbot.server.app import create_app

    write_project(tmp_path, restaurant_model, "http://127.0.0.1:9/webhook")
    settings = ServerSettings(project_dir=tmp_path, enable_api=True)
    agent = build_agent(settings)
    async with TestClient(TestServer(create_app(agent, settings))) as client:
        status = await (await client.get("/status")).json()
    assert status["model_file"] == str(tmp_path / "models" / "restaurant.model")
