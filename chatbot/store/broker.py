"""Event brokers (endpoints.yml ``event_broker:``): every stored event is also published, as Rasa
does for analytics and data pipelines. Two of Rasa's brokers are provided::

    event_broker:
      type: pika                   # RabbitMQ (Rasa's PikaEventBroker)
      url: localhost               # the host, or a whole amqp:// URL
      port: 5672
      username: guest
      password: guest
      queues: [rasa_core_events]   # or queue: name; Rasa's default
      exchange_name: rasa-exchange # a fanout exchange bound to every queue

    event_broker:
      type: sql                    # a table in SQLite or PostgreSQL (Rasa's SQLEventBroker)
      dialect: postgresql          # or sqlite, the default
      url: localhost               # the host (may carry ":port"), or a whole SQLAlchemy URL
      port: 5432
      db: events                   # sqlite: the file, relative to endpoints.yml's folder
                                   # (Rasa's default: events.db)
      username: postgres
      password: secret
      query: {sslmode: require}    # added to the URL's query string

Each event is published as its Rasa JSON with ``sender_id`` added, in the order it was stored:
to RabbitMQ as a persistent message, to SQL as a row of Rasa's table ``events`` (``id``,
``sender_id``, ``data``; see ``chatbot.store.sql_broker``). Publishing never holds up a turn
(``EventBroker``): events wait in a bounded buffer that a background task empties; while the
broker is away the task reconnects and retries (backing off from 1 to 30 s), and when the buffer
is full the oldest waiting events are dropped and counted (logged), so the bot keeps answering.
Both blocks also take ``max_buffer`` (10000 events by default).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chatbot.conversation.events import Event
from chatbot.errors import ChatbotError, ConfigError
from chatbot.json_input import is_unicode_text
from chatbot.project.endpoints import EndpointBlock, url_problem

logger = logging.getLogger(__name__)

DEFAULT_QUEUE = "rasa_core_events"
DEFAULT_EXCHANGE = "rasa-exchange"
DEFAULT_SQLITE_DB = "events.db"  # Rasa's SQL broker's default database
DEFAULT_BUFFER = 10_000
RETRY_SECONDS = 1.0  # the first wait after a failure, doubled up to MAX_RETRY_SECONDS
MAX_RETRY_SECONDS = 30.0

# One event waiting to be published: its conversation id and its JSON (``sender_id`` included).
Pending = tuple[str, str]


class EventBroker(abc.ABC):
    """The buffer and the background task every broker shares: ``publish`` (a processor
    listener) only queues; the task hands the oldest waiting events, up to ``batch_size`` at a
    time, to ``_deliver``, in order, and retries with backoff when it raises.

    ``_deliver`` calls ``_settle(n)`` for each of its first events that is published (or that
    the broker refused for good, ``rejected=True``: those are dropped and counted); when it
    raises, the events not settled go back to the front of the buffer."""

    batch_size = 1

    def __init__(
        self,
        *,
        max_buffer: int = DEFAULT_BUFFER,
        drain_seconds: float = 5.0,
        retry_seconds: float = RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
    ) -> None:
        self.max_buffer = max_buffer
        self.drain_seconds = drain_seconds  # at close, for what is still waiting
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.published = 0
        self.dropped = 0
        self._buffer: deque[Pending] = deque()
        self._in_flight: list[Pending] = []  # taken out of the buffer, being delivered
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def describe(self) -> str:
        """The broker in words for a log line, without credentials."""

    @abc.abstractmethod
    async def _deliver(self, batch: list[Pending]) -> None:
        """Publish ``batch`` in order, calling ``_settle`` as events go out; raise when the
        broker cannot be reached (the rest is retried)."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Drop the connection (after a failure, and at close); the next delivery reconnects."""

    def _reason(self, error: BaseException) -> str:
        """Why a delivery failed, in one line for the log (no event data in it)."""
        return (str(error).strip().splitlines() or [type(error).__name__])[0]

    def publish(self, conversation_id: str, events: Sequence[Event]) -> None:
        """Queue the events for publishing (a processor listener: it returns at once)."""
        for event in events:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self._count_dropped()
            body = {"sender_id": conversation_id, **event}
            text = json.dumps(body, ensure_ascii=False)
            if not is_unicode_text(text):  # a lone surrogate: escaped, so the body encodes
                text = json.dumps(body)
            self._buffer.append((conversation_id, text))
        self._ready.set()

    def _count_dropped(self, count: int = 1) -> None:
        for _ in range(count):
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                logger.error(
                    "event broker %s: buffer full; %d event(s) dropped so far",
                    self.describe(),
                    self.dropped,
                )

    def _settle(self, count: int, *, rejected: bool = False) -> None:
        """The first ``count`` events in flight are published, or refused for good."""
        del self._in_flight[:count]
        if rejected:
            self.dropped += count
        else:
            self.published += count

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
                self.describe(),
                len(self._buffer),
            )
        await self._disconnect()

    @property
    def waiting(self) -> int:
        """Events queued or being delivered."""
        return len(self._buffer) + len(self._in_flight)

    async def _drained(self) -> None:
        while self._buffer or self._in_flight:
            await asyncio.sleep(0.01)

    def _put_back(self) -> None:
        """The events in flight go back to the front of the buffer; past ``max_buffer``, the
        oldest waiting events are dropped."""
        self._buffer.extendleft(reversed(self._in_flight))
        self._in_flight = []
        excess = len(self._buffer) - self.max_buffer
        for _ in range(max(excess, 0)):
            self._buffer.popleft()
        self._count_dropped(max(excess, 0))

    async def _run(self) -> None:
        delay = self.retry_seconds
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._buffer:
                # Taken out while they are sent: a full buffer dropping its oldest events
                # meanwhile cannot drop these, nor make us take out the next ones unsent.
                count = min(self.batch_size, len(self._buffer))
                self._in_flight = [self._buffer.popleft() for _ in range(count)]
                try:
                    await self._deliver(list(self._in_flight))
                except asyncio.CancelledError:
                    self._put_back()  # counted as unpublished at close
                    raise
                except Exception as exc:  # the broker is away: reconnect and retry
                    self._put_back()
                    logger.warning(
                        "event broker %s: cannot publish (%s); %d event(s) waiting, retrying in "
                        "%.3g s",
                        self.describe(),
                        self._reason(exc),
                        len(self._buffer),
                        delay,
                    )
                    await self._disconnect()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_retry_seconds)
                    continue
                delay = self.retry_seconds


class PikaEventBroker(EventBroker):
    """Publishes events to RabbitMQ at ``url`` (``amqp://user:password@host:port/vhost``), one
    at a time, each confirmed by the server."""

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        exchange_name: str = DEFAULT_EXCHANGE,
        **buffering: Any,
    ) -> None:
        super().__init__(**buffering)
        self.url = url
        self.queues = tuple(queues)
        self.exchange_name = exchange_name
        self._connection: Any = None
        self._exchange_obj: Any = None

    def describe(self) -> str:
        return self.url.split("@")[-1]  # no credentials in a log line

    async def _deliver(self, batch: list[Pending]) -> None:
        exchange = await self._exchange()
        for _, body in batch:
            await self._send(exchange, body.encode())
            self._settle(1)

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


_BUFFER_KEYS = frozenset({"type", "max_buffer"})
_PIKA_KEYS = _BUFFER_KEYS | {"url", "host", "port", "username", "password", "queues", "queue"}
_PIKA_KEYS |= {"exchange_name", "vhost"}
_SQL_KEYS = _BUFFER_KEYS | {"dialect", "url", "host", "port", "db", "username", "password"}
_SQL_KEYS |= {"query"}


def create_event_broker(block: EndpointBlock | None) -> EventBroker | None:
    """The broker of endpoints.yml's ``event_broker:`` block; None without one (or for a type we
    do not provide, with a warning). A mistake in a block is a ConfigError naming the file, the
    line and the key."""
    if block is None:
        return None
    kind = block.type or "pika"  # Rasa's broker without a type is pika
    factory = BROKER_TYPES.get(kind.lower())
    if factory is None:
        logger.warning(
            "%sevent_broker: type %r is not provided (only pika and sql); events are not "
            "published, they stay in the conversation store",
            block.origin.prefix,
            kind or None,
        )
        return None
    return factory(block)


def _pika_broker(block: EndpointBlock) -> PikaEventBroker:
    where = block.origin.prefix
    params = block.params
    block.warn_unknown_keys(_PIKA_KEYS)
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
    problem = url_problem(url)
    if problem is not None and "://" in host:  # not shown: a URL may hold a password
        raise ConfigError(f"{where}event_broker: 'url' {problem}")
    if problem is not None:
        raise ConfigError(
            f"{where}event_broker: {host!r} is not a host name (a port goes in 'port')"
        )
    exchange = str(params.get("exchange_name") or DEFAULT_EXCHANGE)
    return PikaEventBroker(
        url, queues=queues, exchange_name=exchange, max_buffer=_max_buffer(block)
    )


def _sql_broker(block: EndpointBlock) -> EventBroker:
    # SQLAlchemy and the database drivers are imported only when a sql broker is configured.
    from chatbot.store.factory import sql_urls
    from chatbot.store.sql_broker import SQLEventBroker

    block.warn_unknown_keys(_SQL_KEYS)
    url, _ = sql_urls(block, Path(DEFAULT_SQLITE_DB))
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigError(
            f"{block.origin.prefix}event_broker: an in-memory SQLite database keeps no events; "
            "give 'db' a file path"
        )
    return SQLEventBroker(url, max_buffer=_max_buffer(block))


def _max_buffer(block: EndpointBlock) -> int:
    size = block.params.get("max_buffer", DEFAULT_BUFFER)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(
            f"{block.origin.prefix}event_broker: 'max_buffer' must be a positive whole number, "
            f"not {size!r}"
        )
    return size


# Rasa's names for its brokers, compared without regard to case.
BROKER_TYPES: dict[str, Callable[[EndpointBlock], EventBroker]] = {
    "pika": _pika_broker,
    "pikaeventbroker": _pika_broker,
    "sql": _sql_broker,
    "sqleventbroker": _sql_broker,
}


class ExportStalled(ChatbotError):
    """``publish_stored``: the broker published nothing for the allowed time."""


async def publish_stored(
    broker: EventBroker,
    store: Any,
    conversation_ids: Sequence[str] | None = None,
    *,
    since: float | None = None,
    until: float | None = None,
    offset: float = 0.0,
    stall_seconds: float = 30.0,
) -> tuple[int, int]:
    """Rasa's ``rasa export``: publish the stored events of the conversations (all of them by
    default), each conversation's in order, those with ``since <= timestamp <= until`` where
    given (by the stored time), each timestamp moved by ``offset`` seconds (Rasa's
    ``--offset-timestamps-by-seconds``). Waits for the broker rather than dropping (events are
    queued only where the buffer has room for them); raises ``ExportStalled`` when it publishes
    nothing for ``stall_seconds``. Returns (conversations, events) handed to the broker;
    ``broker.dropped`` counts those it refused for good."""
    ids = list(conversation_ids) if conversation_ids is not None else await store.conversation_ids()
    await broker.start()
    conversations = events = 0
    chunk = max(broker.max_buffer // 2, 1)
    for conversation_id in ids:
        stored = await store.load(conversation_id, all_sessions=True)
        if not stored.events:
            logger.warning("export: no conversation '%s' in the store", conversation_id)
            continue
        chosen = [_moved(e, offset) for e in stored.events if _within(e, since, until)]
        if not chosen:
            continue
        conversations += 1
        events += len(chosen)
        for start in range(0, len(chosen), chunk):  # never more than the buffer holds
            await _settled(broker, broker.max_buffer - chunk, stall_seconds)
            broker.publish(conversation_id, chosen[start : start + chunk])
    await _settled(broker, 0, stall_seconds)
    return conversations, events


def _moved(event: Event, offset: float) -> Event:
    stamp = event.get("timestamp")
    if not offset or not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return event
    return {**event, "timestamp": stamp + offset}


def _within(event: Event, since: float | None, until: float | None) -> bool:
    stamp = event.get("timestamp")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return since is None and until is None
    return (since is None or stamp >= since) and (until is None or stamp <= until)


async def _settled(broker: EventBroker, at_most: int, stall_seconds: float) -> None:
    """Wait until at most ``at_most`` events are waiting (none in flight when 0)."""
    loop = asyncio.get_running_loop()
    last, progress_at = broker.published + broker.dropped, loop.time()
    while broker.waiting > at_most:
        await asyncio.sleep(0.01)
        done = broker.published + broker.dropped
        if done != last:
            last, progress_at = done, loop.time()
        elif loop.time() - progress_at > stall_seconds:
            raise ExportStalled(
                f"event broker {broker.describe()}: nothing published for {stall_seconds:g} s "
                f"({broker.waiting} event(s) waiting); is it running?"
            )
