"""The Mattermost channel against a fake Mattermost API on loopback: outgoing-webhook posts as
Mattermost makes them (JSON or a form: ``token``, ``channel_id``, ``user_id``, ``post_id``,
``text``, ``trigger_word``), button clicks as interactive-message actions (``context``), and
the bot's posts made with ``POST /posts``."""

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
from chatbot.server.keys import OUTPUTS
from connectors.mattermost import MattermostChannel
from connectors.outbound import RetryPolicy
from tests.connectors.servers import Recorder, ServeChannel, Served, serve

BOT_TOKEN = "xkhz8bot-access-token"
HOOK_TOKEN = "hook-token-7f3a"
USER = "qm6hbdeu3jf9bqtqk4ia8g5gxa"
CHANNEL = "ch4nnel1d000000000000000000"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, timeout=5.0)
_ids = itertools.count(1)


@dataclass
class FakeMattermost:
    posts: Recorder = field(default_factory=Recorder)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v4/posts", self.create)
        return app

    async def create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response({"message": "Invalid or expired session"}, status=401)
        body = await request.json()
        await self.posts.add(body)
        return web.json_response({"id": f"post-{next(_ids)}", **body}, status=201)


def outgoing(text: str, *, trigger: str = "@restaurant", token: str = HOOK_TOKEN) -> dict[str, str]:
    """An outgoing webhook's request for a message starting with its trigger word."""
    return {
        "token": token,
        "team_id": "team1",
        "team_domain": "example",
        "channel_id": CHANNEL,
        "channel_name": "town-square",
        "timestamp": "1796518060000",
        "user_id": USER,
        "user_name": "ann",
        "post_id": f"p{next(_ids)}",
        "text": f"{trigger} {text}",
        "trigger_word": trigger,
        "file_ids": "",
    }


@dataclass
class Mattermost:
    served: Served
    fake: FakeMattermost
    channel: MattermostChannel
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.served.url}/webhooks/mattermost/webhook"

    async def post(self, payload: dict[str, Any], *, form: bool = False) -> int:
        sent = {"data": payload} if form else {"json": payload}
        async with self.http.post(self.url, **sent) as response:
            return response.status

    async def say(self, text: str, **kwargs: Any) -> None:
        assert await self.post(outgoing(text, **kwargs)) == 200

    async def click(self, action: dict[str, Any]) -> int:
        """What Mattermost posts for a click on a button of one of the bot's posts."""
        return await self.post(
            {
                "user_id": USER,
                "user_name": "ann",
                "channel_id": CHANNEL,
                "team_id": "team1",
                "post_id": "p-bot",
                "trigger_id": f"t{next(_ids)}",
                "type": "",
                "context": action["integration"]["context"],
            }
        )


@pytest.fixture
def mattermost_at(
    serve_channel: ServeChannel,
) -> Callable[..., AbstractAsyncContextManager[Mattermost]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Mattermost]:
        fake = FakeMattermost()
        async with serve(fake.app()) as api:
            params = {
                "url": f"{api.url}/api/v4",
                "token": BOT_TOKEN,
                "webhook_url": "https://bot.example.com/webhooks/mattermost/webhook",
                "webhook_token": HOOK_TOKEN,
                **credentials,
            }
            channel = MattermostChannel.from_credentials({k: v for k, v in params.items() if v})
            channel.api.policy = FAST
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Mattermost(served, fake, channel, http)

    return start


async def test_a_conversation_with_buttons_clicked(mattermost_at: Any, agent: Agent) -> None:
    async with mattermost_at() as mm:
        await mm.say("/greet")
        (greeting,) = await mm.fake.posts.wait_count(1)
        assert greeting["channel_id"] == CHANNEL and greeting["message"].startswith(("Hello", "Hi"))
        await mm.say("/request_restaurant")
        asked = (await mm.fake.posts.wait_count(2))[1]
        assert asked["message"] == "What cuisine would you like?"
        (attachment,) = asked["props"]["attachments"]
        italian = attachment["actions"][0]
        assert italian["name"] == "Italian"
        assert (
            italian["integration"]["url"] == "https://bot.example.com/webhooks/mattermost/webhook"
        )
        assert italian["integration"]["context"]["action"] == '/inform{"cuisine": "italian"}'
        assert HOOK_TOKEN not in str(asked)  # the token is never put in a post
        assert await mm.click(italian) == 200
        await mm.fake.posts.wait_count(3)
        # A click whose context was made up (the payload changed) is refused.
        forged = {"integration": {"context": {**italian["integration"]["context"], "action": "/x"}}}
        assert await mm.click(forged) == 403
        # A message as a form, as Mattermost sends it when set to.
        assert await mm.post(outgoing('/inform{"number": 2}'), form=True) == 200
        await mm.fake.posts.wait_count(4)
        send = mm.served.app[OUTPUTS]["mattermost"]
        await send(USER, [{"text": "Your table is ready."}], {})
        assert (await mm.fake.posts.wait_count(5))[4] == {
            "channel_id": CHANNEL,
            "message": "Your table is ready.",
        }
        await mm.channel.workers.close(grace=10)
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 2}',
    ]


async def test_messages_without_the_webhooks_token_are_refused(
    mattermost_at: Any, agent: Agent
) -> None:
    async with mattermost_at() as mm:
        assert await mm.post(outgoing("/greet", token="guess")) == 403
        no_token = outgoing("/greet")
        del no_token["token"]
        assert await mm.post(no_token) == 403
        repeated = outgoing("/goodbye")
        for _ in range(2):
            assert await mm.post(repeated) == 200
        await mm.fake.posts.wait_count(1)
        await mm.channel.workers.close(grace=10)
        assert len(mm.fake.posts.items) == 1
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/goodbye"]


async def test_without_webhook_url_buttons_are_listed_and_without_a_token_it_warns(
    mattermost_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with mattermost_at(webhook_url="", webhook_token="") as mm:
        assert "no 'webhook_token'" in caplog.text
        await mm.say("/request_restaurant", token="anything")
        (asked,) = await mm.fake.posts.wait_count(1)
        assert asked["message"] == (
            "What cuisine would you like?\n- Italian\n- Chinese\n- Mexican\n- Indian"
        )


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"url": "https://x/api/v4"}, "mattermost: 'token' is required"),
        ({"url": "u", "token": "t", "team": "x"}, "mattermost: unknown key(s) team"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MattermostChannel.from_credentials(params)
    assert str(caught.value).startswith(error)
