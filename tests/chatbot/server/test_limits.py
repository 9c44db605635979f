"""Limits: request body size, message length, and the per-sender rate limit (a token bucket)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.processor import TurnResult
from chatbot.server.keys import GATE
from chatbot.server.limits import RateLimiter
from chatbot.server.settings import DEFAULT_MAX_IN_FLIGHT, RateLimit
from tests.chatbot.server.support import StartServer, say


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("30/min", RateLimit(30, 60.0)),
        ("5/s", RateLimit(5, 1.0)),
        ("100/10s", RateLimit(100, 10.0)),
        ("1000 / hour", RateLimit(1000, 3600.0)),
        ("2/0.5s", RateLimit(2, 0.5)),
        ("off", None),
        ("0", None),
    ],
)
def test_rate_limit_parse(text: str, limit: RateLimit | None) -> None:
    assert RateLimit.parse(text) == limit


@pytest.mark.parametrize(
    "text",
    [
        "fast",
        "5",
        "10/fortnight",
        "-1/s",
        "3/0s",
        "/min",
        "1" + "0" * 400 + "/s",  # float() of the count overflowed at every message: a 500
        "1" * 5000 + "/s",  # int() refuses more than 4,300 digits: a traceback at startup
    ],
)
def test_bad_rate_limit_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="rate limit"):
        RateLimit.parse(text)


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(3, 3.0), clock=clock)  # 1 per second, bursts of 3
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # per sender
    clock.now += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills to the burst size only


def test_token_bucket_keeps_a_bounded_number_of_senders() -> None:
    limiter = RateLimiter(RateLimit(1, 60.0), max_senders=100, clock=FakeClock())
    for i in range(1000):
        limiter.take(f"sender-{i}")
    assert len(limiter) == 100
    assert limiter.take("sender-999") > 0  # recent senders are still limited


async def test_rate_limited_sender_gets_a_429_with_retry_after(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model))
    clock = FakeClock()
    client.app[GATE].limiter = RateLimiter(RateLimit(2, 60.0), clock=clock)
    await say(client, "alice", "/greet")
    await say(client, "alice", "/greet")
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "alice", "message": "/greet"}
    )
    assert response.status == 429
    assert response.headers["Retry-After"] == "30"
    assert (await response.json())["reason"] == "TooManyRequests"
    await say(client, "bob", "/greet")  # others are not affected
    clock.now += 30
    await say(client, "alice", "/greet")
    metrics = await (await client.get("/metrics")).text()
    assert "chatbot_rate_limited_total 1.0" in metrics


async def test_request_body_is_capped(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), max_body_bytes=2000, enable_api=True)
    big = {"sender": "a", "message": "x", "metadata": {"pad": "y" * 5000}}
    for method, path in [
        ("POST", "/webhooks/rest/webhook"),
        ("POST", "/conversations/a/tracker/events"),
        ("POST", "/model/parse"),
    ]:
        response = await client.request(method, path, json=big)
        assert response.status == 413, path
        assert (await response.json())["code"] == 413
    assert await say(client, "a", "/greet")


async def test_message_text_is_capped(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), max_message_chars=50, enable_api=True)
    long = "a" * 51
    rest = await client.post("/webhooks/rest/webhook", json={"sender": "a", "message": long})
    assert rest.status == 413
    assert (await rest.json())["reason"] == "MessageTooLong"
    api = await client.post("/conversations/a/messages", json={"text": long, "sender": "user"})
    assert api.status == 413
    parse = await client.post("/model/parse", json={"text": long})
    assert parse.status == 413
    assert await say(client, "a", "a" * 50)


async def test_rest_channel_rate_limit_is_on_by_default(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client: TestClient = await start_server(Agent(restaurant_model))
    assert client.app[GATE].limiter is not None


async def test_messages_beyond_max_in_flight_get_a_503_at_once(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    """With two turns in progress (held up here) a third message, on any sender, the REST channel
    or the API, is refused at once with a 503 and Retry-After; once they finish, messages are
    answered again. The refusals and the turns in progress are in the metrics."""
    agent = Agent(restaurant_model)
    client = await start_server(agent, max_in_flight=2, enable_api=True, rate_limit=None)
    release = asyncio.Event()
    handle = agent.processor.handle

    async def held(message: UserMessage) -> TurnResult:
        await release.wait()
        return await handle(message)

    agent.processor.handle = held  # type: ignore[method-assign]
    body = {"message": "/greet"}
    first = [
        asyncio.ensure_future(client.post("/webhooks/rest/webhook", json={**body, "sender": s}))
        for s in ("ann", "bob")
    ]
    await _until(lambda: client.app[GATE].in_flight == 2)
    metrics = await (await client.get("/metrics")).text()
    assert "chatbot_messages_in_flight 2.0" in metrics
    refused = await client.post("/webhooks/rest/webhook", json={**body, "sender": "cy"})
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    answer = await refused.json()
    assert answer and "try again" in answer[0]["text"].lower()  # the user is told, in the chat
    api = await client.post("/conversations/cy/trigger_intent", json={"name": "greet"})
    assert api.status == 503 and (await api.json())["reason"] == "Overloaded"
    release.set()
    for response in await asyncio.gather(*first):
        assert response.status == 200 and await response.json()
    assert client.app[GATE].in_flight == 0
    assert await say(client, "cy", "/greet")
    metrics = await (await client.get("/metrics")).text()
    assert "chatbot_overloaded_total 2.0" in metrics
    assert "chatbot_messages_in_flight 0.0" in metrics


async def test_max_in_flight_is_on_by_default_and_can_be_off(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model))
    assert client.app[GATE].max_in_flight == DEFAULT_MAX_IN_FLIGHT
    client = await start_server(Agent(restaurant_model), max_in_flight=None)
    assert client.app[GATE].max_in_flight is None


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
