"""Event brokers (endpoints.yml ``event_broker:``): every stored event is also published, as Rasa
does for analytics and data pipelines.

::

    event_broker:
      type: pika                   # RabbitMQ (Rasa's PikaEventBroker)
      url: localhost               # the host, or a whole amqp:// URL
      port: 5672
      username: guest
      password: guest
      queues: [rasa_core_events]   # or queue: name; Rasa's default
      exchange_name: rasa-exchange # a fanout exchange bound to every queue

Each event is published as its Rasa JSON with ``sender_id`` added, persistent, in the order it
was stored. Publishing never holds up a turn: events wait in a bounded buffer that a background
task empties; while RabbitMQ is away the task reconnects and retries (backing off from 1 to 30 s),
and when the buffer is full the oldest waiting events are dropped and counted (logged), so the
bot keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from chatbot.conversation.events import Event
from chatbot.errors import ConfigError
from chatbot.project.endpoints import EndpointBlock

logger = logging.getLogger(__name__)

DEFAULT_QUEUE = "rasa_core_events"
DEFAULT_EXCHANGE = "rasa-exchange"
DEFAULT_BUFFER = 10_000
_RETRY_SECONDS = 1.0  # the first wait after a failure, doubled up to _MAX_RETRY_SECONDS
_MAX_RETRY_SECONDS = 30.0


class PikaEventBroker:
    """Publishes events to RabbitMQ at ``url`` (``amqp://user:password@host:port/vhost``)."""

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        exchange_name: str = DEFAULT_EXCHANGE,
        max_buffer: int = DEFAULT_BUFFER,
        drain_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.drain_seconds = drain_seconds  # at close, for what is still waiting
        self.queues = tuple(queues)
        self.exchange_name = exchange_name
        self.max_buffer = max_buffer
        self.published = 0
        self.dropped = 0
        self._buffer: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._exchange_obj: Any = None
        self._in_flight: bytes | None = None  # the event being sent

    def publish(self, conversation_id: str, events: Sequence[Event]) -> None:
        """Queue the events for publishing (a processor listener: it returns at once)."""
        for event in events:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    logger.error(
                        "event broker %s: buffer full; %d event(s) dropped so far",
                        self._where,
                        self.dropped,
                    )
            body = {"sender_id": conversation_id, **event}
            self._buffer.append(json.dumps(body, ensure_ascii=False).encode())
        self._ready.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Publish what is waiting (for at most ``drain_seconds``), then disconnect."""
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained(), self.drain_seconds)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._buffer:
            logger.error(
                "event broker %s: %d event(s) not published at shutdown",
                self._where,
                len(self._buffer),
            )
        await self._disconnect()

    async def _drained(self) -> None:
        while self._buffer or self._in_flight is not None:
            await asyncio.sleep(0.01)

    @property
    def _where(self) -> str:
        return self.url.split("@")[-1]  # no credentials in a log line

    async def _run(self) -> None:
        delay = _RETRY_SECONDS
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._buffer:
                # Taken out while it is sent: a full buffer dropping its oldest event meanwhile
                # cannot drop this one, nor make us take out the next one unsent.
                body = self._in_flight = self._buffer.popleft()
                try:
                    exchange = await self._exchange()
                    await self._send(exchange, body)
                except asyncio.CancelledError:
                    self._buffer.appendleft(body)  # counted as unpublished at close
                    raise
                except Exception as exc:  # RabbitMQ away: reconnect and retry, the event waits
                    if len(self._buffer) < self.max_buffer:
                        self._buffer.appendleft(body)
                    else:
                        self.dropped += 1
                    self._in_flight = None
                    logger.warning(
                        "event broker %s: cannot publish (%s); %d event(s) waiting, retrying in "
                        "%.0f s",
                        self._where,
                        exc or type(exc).__name__,
                        len(self._buffer),
                        delay,
                    )
                    await self._disconnect()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RETRY_SECONDS)
                    continue
                delay = _RETRY_SECONDS
                self._in_flight = None
                self.published += 1

    async def _exchange(self) -> Any:
        import aio_pika  # imported only when a pika broker is configured

        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self.url, timeout=5.0)
            channel = await self._connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            for name in self.queues:
                queue = await channel.declare_queue(name, durable=True)
                await queue.bind(exchange)
            self._exchange_obj = exchange
        return self._exchange_obj

    async def _send(self, exchange: Any, body: bytes) -> None:
        import aio_pika

        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key="", timeout=10.0)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


_PIKA_KEYS = frozenset(
    {"type", "url", "host", "port", "username", "password", "queues", "queue"}
    | {"exchange_name", "vhost", "max_buffer"}
)


def create_event_broker(block: EndpointBlock | None) -> PikaEventBroker | None:
    """The broker of endpoints.yml's ``event_broker:`` block; None without one (or for a type we
    do not provide, with a warning). A mistake in a pika block is a ConfigError naming the file,
    the line and the key."""
    if block is None:
        return None
    where = block.origin.prefix
    kind = str(block.params.get("type") or "")
    if kind.lower() not in ("pika", "pikaeventbroker"):
        logger.warning(
            "%sevent_broker: type %r is not provided (only pika); events are not published, "
            "they stay in the conversation store",
            where,
            kind or None,
        )
        return None
    params = block.params
    unknown = sorted(set(params) - _PIKA_KEYS)
    if unknown:
        logger.warning("%sevent_broker: ignoring unknown keys %s", where, ", ".join(unknown))
    queues: Any = params.get("queues", params.get("queue", DEFAULT_QUEUE))
    if isinstance(queues, str):
        queues = [queues]
    if not isinstance(queues, list) or not queues or not all(isinstance(q, str) for q in queues):
        raise ConfigError(f"{where}event_broker: 'queues' must be a queue name or a list of them")
    host = str(params.get("url") or params.get("host") or "localhost")
    if "://" in host:
        if not host.startswith(("amqp://", "amqps://")):
            raise ConfigError(f"{where}event_broker: 'url' {host!r} is not an amqp:// URL")
        url = host
    else:
        port = params.get("port", 5672)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{where}event_broker: 'port' must be a port number, not {port!r}")
        user = str(params.get("username") or "guest")
        password = str(params.get("password") or "guest")
        vhost = str(params.get("vhost") or "")
        url = f"amqp://{user}:{password}@{host}:{port}/{vhost}"
    size = params.get("max_buffer", DEFAULT_BUFFER)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{where}event_broker: 'max_buffer' must be a positive whole number")
    exchange = str(params.get("exchange_name") or DEFAULT_EXCHANGE)
    return PikaEventBroker(url, queues=queues, exchange_name=exchange, max_buffer=size)
