"""The SQL event broker (Rasa's SQLEventBroker) against a real SQLite file, a real PostgreSQL and
a real MySQL (MariaDB):
every stored event a row of Rasa's table ``events``, in order, and a database that is away
never holds up a turn."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import create_async_engine

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from chatbot.project.endpoints_reader import read_endpoints
from chatbot.store.broker import create_event_broker
from chatbot.store.sql import async_url
from chatbot.store.sql_broker import SQLEventBroker
from tests.helpers import dialogue_model, free_port
from tests.services import TcpProxy, asyncpg_dsn

from .conftest import eventually

Row = tuple[int, str, dict[str, Any]]


def block(endpoints: str = "endpoints.yml", **params: Any) -> EndpointBlock:
    return EndpointBlock("event_broker", params, Origin(endpoints, 9))


def postgres_block(postgres_url: str, dialect: str = "postgresql", **params: Any) -> EndpointBlock:
    """A Rasa-style block (host, port, db, username, password) for the test's database."""
    url = make_url(postgres_url)
    keys: dict[str, Any] = {"type": "sql", "dialect": dialect, "url": url.host, "port": url.port}
    keys |= {"db": url.database, "username": url.username or "postgres", **params}
    return block(**keys)


def sqlite_rows(path: Path) -> list[Row]:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT id, sender_id, data FROM events ORDER BY id").fetchall()
    return [(id_, sender_id, json.loads(data)) for id_, sender_id, data in found]


async def postgres_rows(postgres_url: str) -> list[Row]:
    conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        found = await conn.fetch("SELECT id, sender_id, data FROM events ORDER BY id")
    finally:
        await conn.close()
    return [(row["id"], row["sender_id"], json.loads(row["data"])) for row in found]


async def mysql_rows(mysql_url: str) -> list[Row]:
    engine = create_async_engine(async_url(mysql_url))
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                sql_text("SELECT id, sender_id, data FROM events ORDER BY id")
            )
            return [(id_, sender_id, json.loads(data)) for id_, sender_id, data in found]
    finally:
        await engine.dispose()


async def stored(agent: Agent, *senders: str) -> list[dict[str, Any]]:
    """Every stored event of the conversations, as the broker publishes it."""
    return [
        {"sender_id": sender, **event}
        for sender in senders
        for event in (await agent.store.load(sender, all_sessions=True)).events
    ]


def assert_rows_are(rows: list[Row], events: list[dict[str, Any]]) -> None:
    assert [(sender_id, data) for _, sender_id, data in rows] == [
        (event["sender_id"], event) for event in events
    ]
    ids = [id_ for id_, _, _ in rows]
    assert ids == sorted(set(ids))  # the rows are numbered in the order they were published


@dataclass
class Database:
    """Where a test's broker writes: its endpoints.yml block, and how to read the rows back."""

    dialect: str
    config: EndpointBlock
    sqlite_path: Path | None = None
    postgres_url: str | None = None
    mysql_url: str | None = None

    async def rows(self) -> list[Row]:
        if self.sqlite_path is not None:
            return sqlite_rows(self.sqlite_path)
        if self.mysql_url is not None:
            return await mysql_rows(self.mysql_url)
        assert self.postgres_url is not None
        return await postgres_rows(self.postgres_url)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.services),
        pytest.param("mysql", marks=pytest.mark.services),
    ]
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":  # a Rasa endpoints.yml: the file relative to its folder
        path = tmp_path / "endpoints.yml"
        path.write_text("action_endpoint: {url: http://x/}\nevent_broker:\n  type: SQL\n")
        config = read_endpoints(path).get("event_broker")
        assert config is not None and config.origin.prefix == f"{path}:2: "
        return Database("sqlite", config, sqlite_path=tmp_path / "events.db")  # Rasa's default
    if request.param == "mysql":  # Rasa users' driver name: served by ours
        url = request.getfixturevalue("mysql_url")
        config = postgres_block(url, "mysql+pymysql", username="root", password="")
        return Database("mysql", config, mysql_url=url)
    url = request.getfixturevalue("postgres_url")
    return Database("postgresql", postgres_block(url, password="not-needed"), postgres_url=url)


async def test_every_stored_event_is_a_row_in_order(database: Database) -> None:
    broker = create_event_broker(database.config)
    assert isinstance(broker, SQLEventBroker) and broker.dialect == database.dialect
    agent = Agent(dialogue_model("restaurant"), broker=broker)
    await broker.start()
    events: list[dict[str, Any]] = []  # in the order they were stored
    for text, sender in [("/greet", "ann"), ("/bot_challenge", "bob"), ("/goodbye", "ann")]:
        before = len(await stored(agent, sender))
        await agent.handle_text(text, sender)
        events += (await stored(agent, sender))[before:]
    await agent.close()  # writes what is waiting first

    rows = await database.rows()
    assert_rows_are(rows, events)
    assert [row[2]["event"] for row in rows[:3]] == ["action", "session_started", "action"]
    assert rows[3][2]["event"] == "user" and rows[3][2]["text"] == "/greet"
    assert broker.published == len(events) and broker.dropped == 0


class SilentServer:
    """Accepts connections on a port and never answers: a database that hangs."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int) -> None:
        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


@pytest.fixture
async def silent_port() -> AsyncIterator[tuple[int, SilentServer]]:
    server = SilentServer()
    port = free_port()
    await server.start(port)
    yield port, server


@pytest.mark.services
async def test_a_database_that_hangs_does_not_hold_up_turns_and_gets_the_events_later(
    postgres_url: str,
    silent_port: tuple[int, SilentServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, silent = silent_port
    config = postgres_block(postgres_url, url="127.0.0.1", port=port, password="pw-secret")
    broker = create_event_broker(config)
    assert isinstance(broker, SQLEventBroker)
    broker.connect_timeout, broker.retry_seconds, broker.max_retry_seconds = 30.0, 0.05, 0.2
    agent = Agent(dialogue_model("restaurant"), broker=broker)
    await broker.start()
    with caplog.at_level(logging.WARNING, logger="chatbot.store.broker"):
        # The broker is stuck connecting to a server that never answers; the turns are not.
        answers = await asyncio.wait_for(agent.handle_text("/bot_challenge", "cy"), 10.0)
        assert answers and answers[0]["text"].startswith("I am a bot")
        await asyncio.wait_for(agent.handle_text("/greet", "di"), 10.0)
        assert broker.published == 0

        await silent.stop()  # the database comes back on the same address
        target = make_url(postgres_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        proxy.port = port
        await proxy.start()
        try:
            events = await stored(agent, "cy", "di")

            async def all_written() -> bool:
                return broker.published == len(events)

            await eventually(all_written, timeout=15.0)
            await agent.close()
        finally:
            await proxy.stop()

    assert_rows_are(await postgres_rows(postgres_url), events)
    assert broker.dropped == 0
    assert f"event broker postgresql at 127.0.0.1:{port}/" in caplog.text
    assert "cannot publish" in caplog.text and "pw-secret" not in caplog.text


async def test_a_full_buffer_drops_the_oldest_events_and_the_rest_arrive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SQLite file whose folder is missing cannot be opened: the database is away until the
    folder is made."""
    path = tmp_path / "missing" / "events.db"
    broker = SQLEventBroker(
        f"sqlite:///{path}", max_buffer=3, retry_seconds=0.05, max_retry_seconds=0.1
    )
    agent = Agent(dialogue_model("restaurant"), broker=broker)
    await broker.start()
    with caplog.at_level(logging.WARNING, logger="chatbot.store.broker"):
        answers = await agent.handle_text("/bot_challenge", "cy")
        assert answers and answers[0]["text"].startswith("I am a bot")
        events = await stored(agent, "cy")
        assert len(events) > 3
        assert broker.published == 0 and broker.dropped == len(events) - 3

        async def warned() -> bool:
            return "cannot publish (unable to open database file)" in caplog.text

        await eventually(warned)
        path.parent.mkdir()  # back

        async def written() -> bool:
            return broker.published == 3

        await eventually(written)
    await agent.close()
    assert_rows_are(sqlite_rows(path), events[-3:])  # the newest three; the oldest dropped
    assert "buffer full; 1 event(s) dropped so far" in caplog.text


async def test_an_events_table_that_is_not_the_brokers_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's tracker store and SQL broker both call their table ``events``; so do we. A broker
    pointed at the conversation store's database says so instead of writing."""
    path = tmp_path / "conversations.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (conversation_id TEXT, seq INTEGER, data TEXT)")
    broker = SQLEventBroker(f"sqlite:///{path}", retry_seconds=0.05, drain_seconds=0.1)
    await broker.start()
    with caplog.at_level(logging.WARNING, logger="chatbot.store.broker"):
        broker.publish("ann", [{"event": "user", "text": "hi"}])

        async def warned() -> bool:
            return "the table 'events' has no column id, sender_id" in caplog.text

        await eventually(warned)
        await broker.close()
    assert broker.published == 0
    assert "1 event(s) not published at shutdown" in caplog.text


@pytest.mark.services
async def test_values_the_database_refuses_are_dropped_alone(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses a NUL character in a string (SQLite stores it): that event is dropped
    and counted, the ones around it are written, in order."""
    broker = create_event_broker(postgres_block(postgres_url))
    assert broker is not None
    events = [{"event": "user", "text": f"m{i}"} for i in range(3)]
    broker.publish("ann", events[:1])
    broker.publish("bad\x00id", events[1:2])
    broker.publish("ann", events[2:])
    with caplog.at_level(logging.ERROR, logger="chatbot.store.sql_broker"):
        await broker.start()  # all three in one batch
        await broker.close()
    rows = await postgres_rows(postgres_url)
    assert_rows_are(rows, [{"sender_id": "ann", **event} for event in (events[0], events[2])])
    assert (broker.published, broker.dropped) == (2, 1)
    assert "refused an event of conversation 'bad\\x00id'" in caplog.text
    assert "m1" not in caplog.text  # no event data in the log


@pytest.mark.parametrize(
    ("params", "url"),
    [
        ({"type": "SQL"}, "sqlite+aiosqlite:////bot/events.db"),  # Rasa's defaults
        (
            {"type": "sql", "dialect": "sqlite", "db": "/var/ev.db"},
            "sqlite+aiosqlite:////var/ev.db",
        ),
        (
            {"type": "SQLEventBroker", "dialect": "postgresql", "url": "db:6543", "db": "events"}
            | {"username": "u", "password": "p", "query": {"sslmode": "disable"}},
            "postgresql+asyncpg://u:p@db:6543/events?sslmode=disable",
        ),
        (
            {"type": "sql", "url": "postgresql://u@db/ev", "dialect": "ignored"},
            "postgresql+asyncpg://u@db/ev",
        ),
        (
            {"type": "sql", "dialect": "mysql+pymysql", "url": "db", "db": "ev", "username": "u"},
            "mysql+asyncmy://u@db/ev",
        ),
        ({"type": "sql", "url": "mariadb://u@db:3307/ev"}, "mariadb+asyncmy://u@db:3307/ev"),
    ],
)
def test_rasas_sql_blocks(params: dict[str, Any], url: str) -> None:
    broker = create_event_broker(block("/bot/endpoints.yml", **params))
    assert isinstance(broker, SQLEventBroker)
    assert broker.url.render_as_string(hide_password=False) == url
    assert "p@" not in broker.describe()


def test_other_brokers_are_named_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    assert create_event_broker(block(type="kafka", url="k:9092")) is None
    assert "endpoints.yml:9: event_broker: type 'kafka' is not provided (only pika and sql)" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({"dialect": "mssql", "db": "events"}, ["'mssql'", "key 'dialect'", "postgresql"]),
        ({"dialect": "mssql"}, ["'mssql'", "key 'dialect'"]),  # the dialect is named first
        ({"url": "oracle://h/d"}, ["'oracle'", "key 'url'"]),
        ({"dialect": "postgresql"}, ["key 'db'"]),
        ({"dialect": "postgresql", "db": "e", "port": "five"}, ["key 'port'", "'five'"]),
        ({"dialect": "postgresql", "db": "e", "query": "a=1"}, ["key 'query'"]),
        ({"url": "sqlite://"}, ["in-memory SQLite", "'db'"]),
        ({"max_buffer": 0}, ["'max_buffer'", "not 0"]),
    ],
)
def test_bad_sql_blocks_name_the_file_and_key(params: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        create_event_broker(block(type="sql", **params))
    message = str(error.value)
    assert message.startswith("endpoints.yml:9: event_broker: "), message
    for needle in needles:
        assert needle in message, message
