"""The pika event broker against a real RabbitMQ: every stored event published, in order, and a
broker that is away never holds up a turn."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from chatbot.store.broker import PikaEventBroker, create_event_broker
from tests.helpers import dialogue_model, free_port
from tests.services import rabbitmq_url  # noqa: F401 (fixture)


@pytest.fixture
async def names(rabbitmq_url: str) -> AsyncIterator[tuple[str, str]]:  # noqa: F811
    """A queue and an exchange of this test's own, deleted afterwards."""
    import aio_pika

    suffix = secrets.token_hex(4)
    queue, exchange = f"chatbot-test-events-{suffix}", f"chatbot-test-exchange-{suffix}"
    yield queue, exchange
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def consumed(url: str, queue: str) -> list[dict[str, Any]]:
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True)
        bodies = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            bodies.append(json.loads(message.body))
        return bodies
    finally:
        await connection.close()


@pytest.mark.services
async def test_every_stored_event_is_published_in_order(
    rabbitmq_url: str,  # noqa: F811
    names: tuple[str, str],
) -> None:
    queue, exchange = names
    broker = PikaEventBroker(rabbitmq_url, queues=[queue], exchange_name=exchange)
    agent = Agent(dialogue_model("restaurant"), broker=broker)
    await broker.start()
    await agent.handle_text("/greet", "ann")
    await agent.handle_text("/bot_challenge", "bob")
    await agent.close()  # publishes what is waiting first
    published = await consumed(rabbitmq_url, queue)
    stored = [
        {"sender_id": sender, **event}
        for sender in ("ann", "bob")
        for event in (await agent.store.load(sender, all_sessions=True)).events
    ]
    assert published == stored  # the Rasa JSON of each event, with its sender, in order
    assert broker.published == len(stored) and broker.dropped == 0
    assert [e["event"] for e in published[:3]] == ["action", "session_started", "action"]


async def test_a_broker_that_is_away_does_not_hold_up_turns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"amqp://guest:pw@127.0.0.1:{free_port()}/"
    broker = PikaEventBroker(url, max_buffer=5, drain_seconds=0.5)
    agent = Agent(dialogue_model("restaurant"), broker=broker)
    await broker.start()
    answers = await agent.handle_text("/bot_challenge", "cy")
    assert answers and answers[0]["text"].startswith("I am a bot")
    assert broker.published == 0 and broker.dropped > 0  # more events than the buffer holds
    with caplog.at_level(logging.WARNING, logger="chatbot.store.broker"):
        await agent.close()
    assert "not published at shutdown" in caplog.text and "pw" not in caplog.text


def test_an_event_with_text_that_is_not_unicode_is_published_escaped() -> None:
    broker = PikaEventBroker(f"amqp://127.0.0.1:{free_port()}/")
    event = {"event": "user", "text": "a lone \ud800 half, and \u00fc"}
    broker.publish("ann", [event])
    (_sender, body), *_ = broker._buffer
    assert json.loads(body.encode("utf-8")) == {"sender_id": "ann", **event}


def block(**params: Any) -> EndpointBlock:
    return EndpointBlock("event_broker", params, Origin("endpoints.yml", 9))


def test_rasas_pika_blocks() -> None:
    broker = create_event_broker(
        block(type="pika", url="mq", port=5673, username="u", password="p", queue="q1")
    )
    assert isinstance(broker, PikaEventBroker)
    assert (broker.url, broker.queues) == ("amqp://u:p@mq:5673/", ("q1",))
    assert broker.exchange_name == "rasa-exchange"
    defaults = create_event_broker(block(type="PikaEventBroker"))
    assert defaults is not None and defaults.queues == ("rasa_core_events",)
    assert defaults.url == "amqp://guest:guest@localhost:5672/"
    # Rasa's broker without a type is pika; its own class by module path is that class.
    for params in ({"url": "mq"}, {"type": "rasa.core.brokers.pika.PikaEventBroker", "url": "mq"}):
        named = create_event_broker(block(**params))
        assert isinstance(named, PikaEventBroker) and named.url == "amqp://guest:guest@mq:5672/"


def test_other_brokers_are_named_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    assert create_event_broker(block(type="kafka", url="k:9092")) is None
    assert "endpoints.yml:9: event_broker: type 'kafka' is not provided" in caplog.text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"type": "pika", "queues": []}, "'queues'"),
        ({"type": "pika", "url": "http://mq"}, "not an amqp:// URL"),
        ({"type": "pika", "port": "five"}, "'port'"),
        ({"type": "pika", "max_buffer": 0}, "'max_buffer'"),
    ],
)
def test_bad_pika_blocks_name_the_file_and_key(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_event_broker(block(**params))
    assert str(error.value).startswith("endpoints.yml:9: ") and needle in str(error.value)


async def test_a_full_buffer_never_loses_the_event_being_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While one event is on its way, the buffer fills and drops its oldest waiting ones: the
    one being sent is still published once, and every event is published or counted dropped."""
    broker = PikaEventBroker("amqp://guest:guest@127.0.0.1:1/", max_buffer=3, drain_seconds=2.0)
    sent: list[str] = []
    release = asyncio.Event()

    async def exchange() -> object:
        return object()

    async def send(_: object, body: bytes) -> None:
        await release.wait()
        sent.append(json.loads(body)["text"])

    monkeypatch.setattr(broker, "_exchange", exchange)
    monkeypatch.setattr(broker, "_send", send)
    await broker.start()
    events = [{"event": "user", "text": f"m{i}"} for i in range(8)]
    broker.publish("c", events[:1])
    await asyncio.sleep(0.05)  # m0 is on its way
    broker.publish("c", events[1:])  # m1..m7: the buffer holds 3, the oldest go
    release.set()
    await broker.close()
    assert sent == ["m0", "m5", "m6", "m7"]
    assert (broker.published, broker.dropped) == (4, 4)
