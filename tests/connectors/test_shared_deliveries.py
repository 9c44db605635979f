"""Several server processes behind one webhook URL: with a Redis lock store, a Slack retry or a
re-sent Telegram update that reaches another process is still answered once.

Each "process" here is its own app, agent and Redis lock store (its own connection pool) on a real
loopback port; they share the conversation store and the Redis server, as two `chatbot run`
processes share PostgreSQL and Redis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.store.memory import InMemoryStore
from chatbot.store.redis_lock import RedisLockStore
from connectors.delivery import Deliveries
from connectors.outbound import RetryPolicy
from connectors.slack import SlackChannel
from connectors.telegram import TelegramChannel
from tests.connectors import fake_slack, fake_telegram
from tests.connectors.servers import Served, app_with, serve
from tests.helpers import DOMAINS
from tests.services import redis_key_prefix, redis_url  # noqa: F401 (fixtures)

FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)


@pytest.fixture
async def redis_locks(redis_url: str, redis_key_prefix: str) -> AsyncIterator[list[RedisLockStore]]:  # noqa: F811
    """Two lock stores (two processes' clients) on the test Redis, under this test's prefix."""
    stores = [RedisLockStore(redis_url, key_prefix=redis_key_prefix) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


async def test_deliveries_are_shared_through_redis_and_expire(
    redis_locks: list[RedisLockStore],
) -> None:
    first, second = Deliveries("slack", ttl=1), Deliveries("slack", ttl=1)
    a, b = redis_locks
    assert await first.first_time(a, "event:Ev1", "ts:C1:1.0")
    assert not await second.first_time(b, "event:Ev1")  # the other process knows it
    assert not await second.first_time(b, "event:Ev2", "ts:C1:1.0")  # any key makes a repeat
    assert not await first.first_time(a, "event:Ev2")  # ...and the new key was remembered
    assert await second.first_time(b, "event:Ev3")
    assert await Deliveries("telegram").first_time(b, "event:Ev1")  # each channel its own keys
    ttl = await a.redis.ttl(f"{a.key_prefix}seen:slack:event:Ev1")
    assert 0 < ttl <= 1


async def test_without_redis_the_process_memory_decides(caplog: pytest.LogCaptureFixture) -> None:
    # A lock store pointing at a port nothing listens on: deduplication still works in-process.
    unreachable = RedisLockStore(
        "redis://127.0.0.1:9/0",
        client_options={"socket_connect_timeout": 0.5, "retry": None},
    )
    deliveries = Deliveries("telegram")
    try:
        with caplog.at_level(logging.WARNING, logger="connectors.delivery"):
            assert await deliveries.first_time(unreachable, "update:1")
            assert not await deliveries.first_time(unreachable, "update:1")
        assert "Redis unreachable for deduplication" in caplog.text
    finally:
        await unreachable.close()
    # No lock store (or an in-memory one): the same.
    assert await deliveries.first_time(None, "update:2")
    assert not await deliveries.first_time(None, "update:2")


def _agents(model: TrainedModel, locks: list[RedisLockStore]) -> list[Agent]:
    store = InMemoryStore()  # shared, as PostgreSQL is shared by two processes
    executor = InProcessExecutor(DOMAINS / "restaurant", "actions")
    return [Agent(model, store=store, locks=lock, action_executor=executor) for lock in locks]


async def test_a_slack_retry_that_reaches_another_process_is_answered_once(
    restaurant_model: TrainedModel, redis_locks: list[RedisLockStore]
) -> None:
    api = fake_slack.FakeSlackApi()
    agents = _agents(restaurant_model, redis_locks)
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(serve(api.app))
        params = {
            "slack_token": fake_slack.TOKEN,
            "slack_signing_secret": fake_slack.SIGNING_SECRET,
            "slack_api_url": f"{fake.url}/api",
        }
        channels = [SlackChannel.from_credentials(params) for _ in agents]
        served: list[Served] = []
        for agent, channel in zip(agents, channels, strict=True):
            channel.api.policy = FAST_RETRIES
            served.append(await stack.enter_async_context(serve(app_with(agent, channel))))
        http = await stack.enter_async_context(aiohttp.ClientSession())

        body = fake_slack.event_body(fake_slack.event_callback("/greet"))
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
        for server, extra in [(served[0], {}), (served[1], retry), (served[0], retry)]:
            headers = {**fake_slack.signed(body), **extra}
            async with http.post(
                f"{server.url}/webhooks/slack/webhook", data=body, headers=headers
            ) as response:
                assert response.status == 200
        # A new message to the second process is answered: only repeats are dropped.
        other = fake_slack.event_body(fake_slack.event_callback("/goodbye"))
        async with http.post(
            f"{served[1].url}/webhooks/slack/webhook", data=other, headers=fake_slack.signed(other)
        ) as response:
            assert response.status == 200
        for channel in channels:
            await channel.workers.close(grace=10)
        assert len(api.posts.items) == 2
    stored = await agents[0].store.load(fake_slack.USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet", "/goodbye"]


async def test_a_telegram_update_sent_to_two_processes_is_answered_once(
    restaurant_model: TrainedModel, redis_locks: list[RedisLockStore]
) -> None:
    api = fake_telegram.FakeTelegramApi()
    agents = _agents(restaurant_model, redis_locks)
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(serve(api.app))
        params = {
            "access_token": fake_telegram.TOKEN,
            "secret_token": fake_telegram.SECRET,
            "api_url": fake.url,
        }
        channels = [TelegramChannel.from_credentials(params) for _ in agents]
        served: list[Served] = []
        for agent, channel in zip(agents, channels, strict=True):
            channel.api.policy = FAST_RETRIES
            served.append(await stack.enter_async_context(serve(app_with(agent, channel))))
        http = await stack.enter_async_context(aiohttp.ClientSession())

        update = fake_telegram.message_update("/greet")
        headers = {"X-Telegram-Bot-Api-Secret-Token": fake_telegram.SECRET}
        for server in [served[0], served[1], served[1]]:
            async with http.post(
                f"{server.url}/webhooks/telegram/webhook", json=update, headers=headers
            ) as response:
                assert response.status == 200
        for channel in channels:
            await channel.workers.close(grace=10)
        assert len(api.sent()) == 1
    stored = await agents[0].store.load(str(fake_telegram.CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet"]
