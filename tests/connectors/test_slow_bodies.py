"""A client that announces a body and sends less (or sends it very slowly) gets a 408 once the
server's ``body_timeout`` has passed, on every route that reads a body: the REST channel, the
HTTP API, a model upload (a deadline for each chunk), the Telegram and Slack webhooks and the
chat widget's socket.io polling. It no longer holds its connection (and a task) for ever."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbot.agent import Agent
from chatbot.server.app import AGENT, create_app
from chatbot.server.settings import ServerSettings
from connectors.slack import SlackChannel
from connectors.socketio import MAX_POLLING_BODY, SocketIOChannel
from connectors.telegram import TelegramChannel
from tests.connectors.fake_slack import SIGNING_SECRET
from tests.connectors.fake_slack import TOKEN as SLACK_TOKEN
from tests.connectors.fake_telegram import SECRET, TOKEN
from tests.connectors.servers import serve

TIMEOUT = 0.5  # the server's body_timeout in these tests


@pytest.fixture
async def url(agent: Agent, tmp_path: Path) -> AsyncIterator[str]:
    """The app with the API, Telegram, Slack and socket.io mounted, on a loopback port."""
    settings = ServerSettings(
        project_dir=tmp_path, enable_api=True, body_timeout=TIMEOUT, rate_limit=None
    )
    app = create_app(agent, settings)
    channels = [
        TelegramChannel.from_credentials(
            {"access_token": TOKEN, "secret_token": SECRET, "api_url": "http://127.0.0.1:9"}
        ),
        SlackChannel.from_credentials(
            {
                "slack_token": SLACK_TOKEN,
                "slack_signing_secret": SIGNING_SECRET,
                "slack_api_url": "http://127.0.0.1:9/api",
            }
        ),
        SocketIOChannel.from_credentials({}),
    ]
    for channel in channels:
        channel.register(app, lambda: app[AGENT])
    async with serve(app) as served:
        yield served.url


async def send(
    url: str,
    method: str,
    path: str,
    *,
    length: int | None,
    parts: list[bytes],
    pause: float = 0.0,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes, float]:
    """``parts`` of a body sent ``pause`` seconds apart under a ``length`` that may announce
    more; the status, headers and body of the answer, and the seconds until it came."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.perf_counter()
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        if length is None:
            head += "Transfer-Encoding: chunked\r\n"
        else:
            head += f"Content-Length: {length}\r\n"
        writer.write(head.encode() + b"X-Telegram-Bot-Api-Secret-Token: " + SECRET.encode())
        writer.write(b"\r\n\r\n")
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10 * TIMEOUT + 10)
        seconds = time.perf_counter() - started
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body, seconds
    finally:
        writer.close()


ROUTES = [
    ("POST", "/webhooks/rest/webhook"),
    ("POST", "/model/parse"),
    ("PUT", "/conversations/kim/tracker/events"),
    ("PUT", "/model"),  # JSON: Rasa's {"model_file": ...}
    ("POST", "/webhooks/telegram/webhook"),
    ("POST", "/webhooks/slack/webhook"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_body_that_stops_short_is_a_408(url: str, method: str, path: str) -> None:
    status, headers, body, seconds = await send(
        url, method, path, length=100, parts=[b'{"sender": "kim", ']
    )
    assert status == 408, body
    assert json.loads(body)["message"] == f"the request body did not arrive within {TIMEOUT:g} s"
    assert headers.get("connection") == "close"
    assert TIMEOUT <= seconds < TIMEOUT + 5


async def test_a_body_sent_in_parts_within_the_deadline_is_answered(url: str) -> None:
    body = json.dumps({"sender": "kim", "message": "/greet"}).encode()
    parts = [body[:10], body[10:20], body[20:]]
    status, _, answer, _ = await send(
        url, "POST", "/webhooks/rest/webhook", length=len(body), parts=parts, pause=TIMEOUT / 5
    )
    assert status == 200 and json.loads(answer), answer


async def test_a_body_slower_in_all_than_the_deadline_is_a_408(url: str) -> None:
    """The deadline is for the whole body, not between two of its parts."""
    body = json.dumps({"sender": "kim", "message": "/greet"}).encode()
    parts = [body[i : i + 4] for i in range(0, len(body), 4)]
    status, _, _, _ = await send(
        url, "POST", "/webhooks/rest/webhook", length=len(body), parts=parts, pause=TIMEOUT / 4
    )
    assert status == 408


async def test_a_model_upload_has_a_deadline_for_each_chunk(url: str) -> None:
    octet = "application/octet-stream"
    # Chunks closer together than the deadline: read whole however long it takes in all (then
    # refused for what it is, not for its time).
    parts = [b"x" * 1000] * 4
    status, _, body, seconds = await send(
        url, "PUT", "/model", length=4000, parts=parts, pause=TIMEOUT / 2, content_type=octet
    )
    assert status == 400 and "not a chatbot model" in json.loads(body)["message"]
    assert seconds >= TIMEOUT
    # A chunk that does not come: a 408.
    status, _, body, _ = await send(
        url, "PUT", "/model", length=4000, parts=[b"x" * 1000], content_type=octet
    )
    assert status == 408, body


async def test_socketio_polling_bodies_are_awaited_with_a_deadline(url: str) -> None:
    path = "/socket.io/?EIO=4&transport=polling&sid=nobody"
    status, _, _, seconds = await send(url, "POST", path, length=100, parts=[b"4"])
    assert status == 408 and seconds >= TIMEOUT
    # Whole bodies reach engine.io (which knows no such session: a 400, at once).
    status, _, _, seconds = await send(url, "POST", path, length=5, parts=[b"42[1]"])
    assert status == 400 and seconds < TIMEOUT
    big = b"4" * (MAX_POLLING_BODY - 10)
    status, _, _, seconds = await send(url, "POST", path, length=len(big), parts=[big])
    assert status == 400 and seconds < TIMEOUT
    # Larger than a polling body is, or of unknown length: a 413 without waiting.
    status, _, _, _ = await send(url, "POST", path, length=MAX_POLLING_BODY + 1, parts=[])
    assert status == 413
    status, _, _, _ = await send(url, "POST", path, length=None, parts=[b"5\r\n42[1]\r\n"])
    assert status == 413


@pytest.mark.parametrize("path", ["/model/train", "/model/test/stories"])
async def test_training_and_test_data_have_a_deadline_for_each_chunk(url: str, path: str) -> None:
    """Rasa's training and test routes read bodies larger than the usual limit, in chunks: a
    stalled one is a 408 all the same."""
    status, headers, body, seconds = await send(
        url, "POST", path, length=100, parts=[b"nlu:\n"], content_type="application/yaml"
    )
    assert status == 408, body
    assert headers.get("connection") == "close"
    assert TIMEOUT <= seconds < TIMEOUT + 5
