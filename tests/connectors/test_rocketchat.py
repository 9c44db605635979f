"""The Rocket.Chat channel against a fake Rocket.Chat REST API on loopback: outgoing-webhook
messages as the integration posts them (``token``, ``bot``, ``channel_id``, ``message_id``,
``user_name``, ``text``), a livechat room's webhook, the bot's login (``POST /api/v1/login``) and
its posts (``POST /api/v1/chat.postMessage`` with ``X-Auth-Token`` and ``X-User-Id``)."""

from __future__ import annotations

import itertools
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
from connectors.outbound import RetryPolicy
from connectors.rocketchat import RocketChatChannel, rocketchat_posts
from tests.connectors.servers import Recorder, ServeChannel, Served, serve

BOT_USER, PASSWORD = "restaurant-bot", "s3cret-pass"
HOOK_TOKEN = "integration-token"
ROOM = "GENERAL"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, timeout=5.0)
_ids = itertools.count(1)


@dataclass
class FakeRocketChat:
    posts: Recorder = field(default_factory=Recorder)
    logins: int = 0
    tokens: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/login", self.login)
        app.router.add_post("/api/v1/chat.postMessage", self.post)
        return app

    async def login(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.logins += 1
        if body != {"user": BOT_USER, "password": PASSWORD}:
            return web.json_response(
                {"status": "error", "error": "Unauthorized", "message": "Unauthorized"}, status=401
            )
        token = f"auth-{self.logins}"
        self.tokens.add(token)
        return web.json_response(
            {"status": "success", "data": {"authToken": token, "userId": "bot-id"}}
        )

    async def post(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Auth-Token") not in self.tokens:
            return web.json_response(
                {"status": "error", "message": "You must be logged in to do this."}, status=401
            )
        body = await request.json()
        await self.posts.add(body)
        return web.json_response({"success": True, "message": {"_id": f"m{next(_ids)}", **body}})


def outgoing(text: str, *, user: str = "ann", token: str = HOOK_TOKEN) -> dict[str, Any]:
    return {
        "token": token,
        "bot": False,
        "channel_id": ROOM,
        "channel_name": "general",
        "message_id": f"msg{next(_ids)}",
        "timestamp": "2026-12-06T01:00:00.000Z",
        "user_id": "u-ann",
        "user_name": user,
        "text": text,
        "siteUrl": "https://chat.example.com",
    }


@dataclass
class Rocket:
    served: Served
    fake: FakeRocketChat
    channel: RocketChatChannel
    http: aiohttp.ClientSession

    async def post(self, payload: Any) -> int:
        url = f"{self.served.url}/webhooks/rocketchat/webhook"
        async with self.http.post(url, json=payload) as response:
            return response.status

    async def say(self, text: str, **kwargs: Any) -> None:
        assert await self.post(outgoing(text, **kwargs)) == 200


@pytest.fixture
def rocket_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Rocket]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Rocket]:
        fake = FakeRocketChat()
        async with serve(fake.app()) as api:
            params = {
                "user": BOT_USER,
                "password": PASSWORD,
                "server_url": api.url,
                "webhook_token": HOOK_TOKEN,
                **credentials,
            }
            channel = RocketChatChannel.from_credentials({k: v for k, v in params.items() if v})
            channel.api.policy = FAST
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Rocket(served, fake, channel, http)

    return start


async def test_a_conversation_in_a_room_with_buttons(rocket_at: Any, agent: Agent) -> None:
    async with rocket_at() as rocket:
        await rocket.say("/greet")
        (greeting,) = await rocket.fake.posts.wait_count(1)
        assert greeting["roomId"] == ROOM and greeting["text"].startswith(("Hello", "Hi"))
        await rocket.say("/request_restaurant")
        asked = (await rocket.fake.posts.wait_count(2))[1]
        assert asked["text"] == "What cuisine would you like?"
        assert asked["attachments"][0]["actions"][0] == {
            "type": "button",
            "text": "Italian",
            "msg": '/inform{"cuisine": "italian"}',
            "msg_in_chat_window": True,
        }
        # The click sends the payload into the room as the user's message.
        await rocket.say('/inform{"cuisine": "italian"}')
        await rocket.fake.posts.wait_count(3)
        # The session expired: the bot logs in again and posts.
        rocket.fake.tokens.clear()
        await rocket.say("/goodbye")
        await rocket.fake.posts.wait_count(4)
        assert rocket.fake.logins == 2
        await rocket.channel.workers.close(grace=10)
    stored = await agent.store.load(ROOM)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        "/goodbye",
    ]


async def test_a_livechat_visitor_is_answered_in_the_visitors_room(
    rocket_at: Any, agent: Agent
) -> None:
    async with rocket_at() as rocket:
        livechat = {
            "token": HOOK_TOKEN,
            "_id": "livechat-room-1",
            "type": "Message",
            "visitor": {"_id": "v1", "username": "guest-1", "token": "visitor-token"},
            "messages": [{"_id": "lm1", "username": "guest-1", "msg": "/greet"}],
        }
        assert await rocket.post(livechat) == 200
        (answer,) = await rocket.fake.posts.wait_count(1)
        assert answer["roomId"] == "livechat-room-1"


async def test_without_the_token_own_messages_and_repeats_nothing_is_answered(
    rocket_at: Any, agent: Agent
) -> None:
    async with rocket_at() as rocket:
        assert await rocket.post(outgoing("/greet", token="guess")) == 403
        assert await rocket.post(outgoing("/greet", user=BOT_USER)) == 200  # the bot's own
        assert await rocket.post({**outgoing("/greet"), "bot": {"i": "x"}}) == 200
        repeated = outgoing("/goodbye")
        for _ in range(2):
            assert await rocket.post(repeated) == 200
        await rocket.fake.posts.wait_count(1)
        await rocket.channel.workers.close(grace=10)
        assert len(rocket.fake.posts.items) == 1
    stored = await agent.store.load(ROOM)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/goodbye"]


async def test_a_refused_login_is_logged_without_the_password(
    rocket_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with rocket_at(password="wrong", webhook_token="") as rocket:
        assert "no 'webhook_token'" in caplog.text
        await rocket.say("/greet", token="anything")
        await rocket.channel.workers.close(grace=10)
        assert rocket.fake.posts.items == []
    assert "the login of 'restaurant-bot' was refused (Unauthorized)" in caplog.text
    assert "wrong" not in caplog.text.replace("wrong token", "")


def test_bot_messages_as_posts() -> None:
    assert rocketchat_posts({"text": "One.\n\nTwo."}) == [{"text": "One."}, {"text": "Two."}]
    assert rocketchat_posts({"image": "https://x.example/a.png"}) == [
        {"attachments": [{"image_url": "https://x.example/a.png", "collapsed": False}]}
    ]
    assert rocketchat_posts({"custom": {"text": "hi", "channel": "#x", "room_id": "r"}}) == [
        {"text": "hi", "channel": "#x"}
    ]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"user": "u", "password": "p"}, "rocketchat: 'server_url' is required"),
        ({"user": "u", "password": "p", "server_url": "s", "x": 1}, "rocketchat: unknown key(s) x"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RocketChatChannel.from_credentials(params)
    assert str(caught.value).startswith(error)
