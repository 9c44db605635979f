"""Rasa's callback channel: answered at once, the bot's messages POSTed to the configured URL."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatbot.actions.base import ActionContext
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.server import RateLimit, ServerSettings, create_app
from chatbot.server.errors import APOLOGY
from chatbot.store import SQLStore
from connectors.callback import CallbackChannel
from tests.connectors.servers import WAIT, Receiver, serve

WEBHOOK = "/webhooks/callback/webhook"


class HeldActions:
    """A custom-action executor that holds every call until released."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        self.called.set()
        await self.release.wait()
        return {"events": [{"event": "slot", "name": "cuisine", "value": "thai"}]}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake = Receiver()
    async with serve(fake.app) as served:
        yield fake, f"{served.url}/bot"


def callback_settings(url: str, **params: Any) -> ServerSettings:
    block = EndpointBlock("callback", {"url": url, **params}, Origin("credentials.yml", 4))
    return ServerSettings(credentials=Credentials({"callback": block}), rate_limit=None)


async def test_answers_at_once_and_posts_the_replies(
    restaurant_model: TrainedModel, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    held = HeldActions()
    agent = Agent(restaurant_model, action_executor=held)
    async with TestClient(TestServer(create_app(agent, callback_settings(url)))) as client:
        response = await client.post(
            WEBHOOK,
            json={"sender": "eve", "message": '/request_restaurant{"cuisine": "thai"}'},
        )
        # Answered while the turn still waits for its custom action.
        assert response.status == 200
        assert await response.text() == "success"
        await asyncio.wait_for(held.called.wait(), WAIT)
        assert fake.messages.items == []

        held.release.set()
        messages = await fake.messages.wait_count(1)
        assert messages[0]["recipient_id"] == "eve"
        assert "people" in messages[0]["text"]


async def test_rasas_endpoint_keys_go_with_every_post(
    restaurant_model: TrainedModel, receiver: tuple[Receiver, str]
) -> None:
    """Rasa builds the channel's client from its endpoint keys (EndpointConfig): a receiver
    that checks them got none (they were silently dropped)."""
    fake, url = receiver
    settings = callback_settings(
        url,
        headers={"X-Api-Key": "k3y"},
        params={"bot": "shop"},
        token="t0ken",
        token_name="auth",
        basic_auth={"username": "ann", "password": "pw"},
    )
    agent = Agent(restaurant_model)
    async with TestClient(TestServer(create_app(agent, settings))) as client:
        response = await client.post(WEBHOOK, json={"sender": "kim", "message": "/greet"})
        assert response.status == 200
        await fake.messages.wait_count(1)
    headers, query = fake.requests[0]
    assert headers["X-Api-Key"] == "k3y"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ann:pw").decode()
    assert query == {"bot": "shop", "auth": "t0ken"}


async def test_messages_of_one_conversation_stay_in_order(
    agent: Agent, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    async with TestClient(TestServer(create_app(agent, callback_settings(url)))) as client:
        texts = ["/bot_challenge", "/greet", "/goodbye"]
        for text in texts:
            response = await client.post(WEBHOOK, json={"sender": "fay", "message": text})
            assert response.status == 200
        messages = await fake.messages.wait_count(3)
    assert messages[0]["text"] == "I am a bot: a restaurant booking assistant."
    assert messages[2]["text"] in (
        "Goodbye, and enjoy your meal!",
        "Bye! Come back whenever you're hungry.",
    )


async def test_a_lost_database_posts_an_apology(
    restaurant_model: TrainedModel, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    fake, url = receiver
    agent = Agent(restaurant_model, store=SQLStore(f"sqlite:///{tmp_path / 'gone' / 'c.db'}"))
    async with TestClient(TestServer(create_app(agent, callback_settings(url)))) as client:
        response = await client.post(WEBHOOK, json={"sender": "gus", "message": "/greet"})
        assert response.status == 200
        assert await fake.messages.wait_count(1) == [{"recipient_id": "gus", "text": APOLOGY}]


async def test_shutdown_finishes_the_messages_in_hand(
    restaurant_model: TrainedModel, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    held = HeldActions()
    agent = Agent(restaurant_model, action_executor=held)
    client = TestClient(TestServer(create_app(agent, callback_settings(url))))
    await client.start_server()
    try:
        response = await client.post(
            WEBHOOK, json={"sender": "hal", "message": '/request_restaurant{"cuisine": "thai"}'}
        )
        assert response.status == 200
        await asyncio.wait_for(held.called.wait(), WAIT)
        closing = asyncio.create_task(client.close())
        held.release.set()
        await asyncio.wait_for(closing, WAIT)
    finally:
        await client.close()
    assert len(fake.messages.items) == 1  # delivered before the server finished closing
    events = (await agent.store.load("hal")).events
    assert events[-1]["name"] == "action_listen"


async def test_too_many_pending_messages_are_refused(
    restaurant_model: TrainedModel, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    held = HeldActions()
    agent = Agent(restaurant_model, action_executor=held)
    settings = callback_settings(url, max_pending=1)
    async with TestClient(TestServer(create_app(agent, settings))) as client:
        body = {"sender": "ida", "message": '/request_restaurant{"cuisine": "thai"}'}
        assert (await client.post(WEBHOOK, json=body)).status == 200
        await asyncio.wait_for(held.called.wait(), WAIT)
        refused = await client.post(WEBHOOK, json={"sender": "jo", "message": "/greet"})
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "1"
        held.release.set()


async def test_bad_bodies_and_limits_are_answered_at_once(
    agent: Agent, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    settings = callback_settings(url)
    settings.max_message_chars = 10
    async with TestClient(TestServer(create_app(agent, settings))) as client:
        assert (await client.post(WEBHOOK, data=b"nope")).status == 400
        assert (await client.post(WEBHOOK, json={"sender": "k"})).status == 400
        too_long = await client.post(WEBHOOK, json={"sender": "k", "message": "x" * 11})
        assert too_long.status == 413
    settings.client_rate_limit = RateLimit(1, 60.0)
    async with TestClient(TestServer(create_app(agent, settings))) as client:
        assert (await client.post(WEBHOOK, json={"sender": "k", "message": "/greet"})).status == 200
        refused = await client.post(WEBHOOK, json={"sender": "l", "message": "/greet"})
        assert refused.status == 429
        assert "from this address" in (await refused.json())["message"]
        assert (await client.get("/webhooks/callback/")).status == 200


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "'url'"),
        ({"url": "ftp://x"}, "'url'"),
        ({"url": "http://x", "timeout": -1}, "'timeout'"),
        ({"url": "http://x", "max_pending": 0}, "'max_pending'"),
    ],
)
async def test_bad_credentials_name_the_file_and_line(
    agent: Agent, params: dict[str, Any], needle: str
) -> None:
    block = EndpointBlock("callback", params, Origin("credentials.yml", 4))
    settings = ServerSettings(credentials=Credentials({"callback": block}))
    with pytest.raises(ConfigError) as error:
        create_app(agent, settings)
    assert str(error.value).startswith("credentials.yml:4: callback: ")
    assert needle in str(error.value)


def test_from_credentials() -> None:
    channel = CallbackChannel.from_credentials({"url": "http://localhost:5034/bot", "timeout": 3})
    assert (channel.url, channel.timeout, channel.max_pending) == (
        "http://localhost:5034/bot",
        3.0,
        1000,
    )
