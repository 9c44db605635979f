"""The Webex channel (Rasa's ``webexteams``) against a fake Webex API on loopback: webhook
notices as Webex posts them (``{"resource": "messages", "event": "created", "data": {"id",
"roomId", "personId", ...}}``, signed with ``X-Spark-Signature`` where the webhook has a secret),
the message read with ``GET /messages/{id}``, answers made with ``POST /messages``."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.server.keys import OUTPUTS
from connectors.outbound import RetryPolicy
from connectors.webexteams import WebexChannel, webex_messages
from tests.connectors.servers import Recorder, ServeChannel, Served, serve

TOKEN = "NjQ4webex-bot-token"
BOT = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q"
ANN = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hbm4"
ROOM = "Y2lzY29zcGFyazovL3VzL1JPT00vZGlyZWN0"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, timeout=5.0)
_ids = itertools.count(1)


@dataclass
class FakeWebex:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # what users wrote
    posted: Recorder = field(default_factory=Recorder)
    reads: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/people/me", self.me)
        app.router.add_get("/messages/{id}", self.read)
        app.router.add_post("/messages", self.post)
        return app

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response({"id": BOT, "displayName": "Restaurant", "type": "bot"})

    async def read(self, request: web.Request) -> web.Response:
        self.reads.append(request.match_info["id"])
        message = self.messages.get(request.match_info["id"])
        if not self._authorized(request) or message is None:
            return web.json_response(
                {"message": "The requested resource could not be found."}, status=404
            )
        return web.json_response(message)

    async def post(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                {"message": "The request requires a valid access token"}, status=401
            )
        body = await request.json()
        await self.posted.add(body)
        return web.json_response({"id": f"sent-{next(_ids)}", **body})

    def write(self, text: str, *, person: str = ANN, room: str = ROOM) -> dict[str, Any]:
        """A message a person wrote; the notice Webex posts for it."""
        message_id = f"msg-{next(_ids)}"
        self.messages[message_id] = {
            "id": message_id,
            "roomId": room,
            "roomType": "direct",
            "personId": person,
            "personEmail": "ann@example.com",
            "text": text,
            "created": "2026-12-06T01:00:00.000Z",
        }
        return notice(message_id, person, room)


def notice(message_id: str, person: str = ANN, room: str = ROOM) -> dict[str, Any]:
    return {
        "id": "webhook-1",
        "name": "restaurant bot",
        "resource": "messages",
        "event": "created",
        "data": {"id": message_id, "roomId": room, "personId": person, "roomType": "direct"},
    }


@dataclass
class Webex:
    served: Served
    fake: FakeWebex
    channel: WebexChannel
    http: aiohttp.ClientSession

    async def post(self, payload: Any, headers: dict[str, str] | None = None) -> int:
        url = f"{self.served.url}/webhooks/webexteams/webhook"
        async with self.http.post(url, json=payload, headers=headers or {}) as response:
            return response.status

    async def say(self, text: str, **kwargs: Any) -> None:
        assert await self.post(self.fake.write(text, **kwargs)) == 200

    async def sent(self, count: int) -> list[dict[str, Any]]:
        return await self.fake.posted.wait_count(count)


@pytest.fixture
def webex_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Webex]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Webex]:
        fake = FakeWebex()
        async with serve(fake.app()) as api:
            channel = WebexChannel.from_credentials(
                {"access_token": TOKEN, "api_url": api.url, **credentials}
            )
            channel.api.policy = FAST
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Webex(served, fake, channel, http)

    return start


async def test_a_conversation_read_from_the_api_and_answered_in_its_space(
    webex_at: Any, agent: Agent
) -> None:
    async with webex_at() as webex:
        await webex.say("/greet")
        (greeting,) = await webex.sent(1)
        assert greeting["roomId"] == ROOM and greeting["text"].startswith(("Hello", "Hi"))
        await webex.say("/request_restaurant")
        asked = (await webex.sent(2))[1]
        assert asked["text"] == (
            "What cuisine would you like?\n1: Italian\n2: Chinese\n3: Mexican\n4: Indian"
        )
        await webex.say("2")  # the second button
        await webex.sent(3)
        # A reminder goes to the space Ann last wrote in.
        await webex.served.app[OUTPUTS]["webexteams"](ANN, [{"text": "Still there?"}], {})
        assert (await webex.sent(4))[3] == {"roomId": ROOM, "text": "Still there?"}
        await webex.channel.workers.close(grace=10)
    stored = await agent.store.load(ANN)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "chinese"}',
    ]


async def test_the_bots_own_messages_and_unknown_ones_are_not_answered(
    webex_at: Any, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with webex_at() as webex:
        assert await webex.post(webex.fake.write("/greet", person=BOT)) == 200
        assert await webex.post(notice("forged-id")) == 200  # names no message the bot can read
        assert await webex.post({"resource": "memberships", "data": {"id": "m"}}) == 200
        assert await webex.post(["not", "a", "notice"]) == 200
        repeated = webex.fake.write("/greet")
        for _ in range(3):
            assert await webex.post(repeated) == 200
        await webex.sent(1)
        await webex.channel.workers.close(grace=10)
        assert len(webex.fake.posted.items) == 1
        assert "forged-id" in webex.fake.reads
    assert "message forged-id could not be read" in caplog.text
    assert [e["text"] for e in (await agent.store.load(ANN)).events if e["event"] == "user"] == [
        "/greet"
    ]
    assert (await agent.store.load(BOT)).events == []


async def test_with_a_secret_notices_must_be_signed(webex_at: Any, agent: Agent) -> None:
    async with webex_at(secret="webhook-secret", room="fixed-room") as webex:
        payload = webex.fake.write("/greet")
        assert await webex.post(payload) == 403
        assert await webex.post(payload, {"X-Spark-Signature": "0" * 40}) == 403
        body = json.dumps(payload).encode()
        signature = hmac.new(b"webhook-secret", body, hashlib.sha1).hexdigest()
        url = f"{webex.served.url}/webhooks/webexteams/webhook"
        headers = {"X-Spark-Signature": signature, "Content-Type": "application/json"}
        async with webex.http.post(url, data=body, headers=headers) as response:
            assert response.status == 200
        (answer,) = await webex.sent(1)
        assert answer["roomId"] == "fixed-room"  # credentials' room wins


def test_bot_messages_as_webex_messages() -> None:
    assert webex_messages({"text": "One.\n\nTwo."}) == [{"text": "One."}, {"text": "Two."}]
    assert webex_messages({"image": "https://x.example/a.png"}) == [
        {"files": ["https://x.example/a.png"]}
    ]
    card = {"markdown": "**Menu**", "attachments": [{"contentType": "x", "content": {}}]}
    assert webex_messages({"custom": card}) == [card]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "webexteams: 'access_token' is required"),
        ({"access_token": "t", "room": ""}, "webexteams: 'room' must be a non-empty string"),
        ({"access_token": "t", "token": "x"}, "webexteams: unknown key(s) token"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WebexChannel.from_credentials(params)
    assert str(caught.value).startswith(error)
