"""The SQL schema: created at start, versioned, upgradable, and indexed for the queries we make."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from chatbot.errors import ConfigError
from chatbot.store import SQLStore, schema
from chatbot.store.sql import async_url

SQL_BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.services),
    pytest.param("mysql", marks=pytest.mark.services),
]


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conversations.db'}"
    return request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_url")


async def versions(url: str) -> list[tuple[int, str]]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(schema.schema_version.c.version, schema.schema_version.c.description)
            )
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def test_tables_are_created_at_start_and_stamped(sql_url: str) -> None:
    async with SQLStore(sql_url):
        pass
    async with SQLStore(sql_url):  # a second start changes nothing
        pass

    assert await versions(sql_url) == [(schema.SCHEMA_VERSION, "created")]


async def test_stores_starting_together_on_an_empty_database_create_it_once(sql_url: str) -> None:
    stores = [SQLStore(sql_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.start() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))

    assert await versions(sql_url) == [(schema.SCHEMA_VERSION, "created")]


async def test_sqlite_stores_starting_together_never_wait_on_each_other(tmp_path: Path) -> None:
    # A fresh SQLite file is switched to WAL mode by the first connection of each store; one
    # store's table creation and another's switch used to deadlock until the busy timeout.
    for attempt in range(15):
        url = f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}"
        stores = [SQLStore(url, busy_timeout=10.0) for _ in range(6)]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.start() for s in stores)), timeout=5.0)
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        assert await versions(url) == [(schema.SCHEMA_VERSION, "created")]


def _add_column(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE conversations ADD COLUMN channel VARCHAR(32)"))


async def test_migrations_after_the_database_version_are_applied_in_order(sql_url: str) -> None:
    async with SQLStore(sql_url) as store:
        await store.append("alice", [{"event": "user", "text": "hi"}], start_seq=0)
    migrations = [
        schema.Migration(1, "never applied: the database is at 1 already", _add_column),
        schema.Migration(2, "add conversations.channel", _add_column),
        schema.Migration(3, "nothing", lambda conn: None),
    ]
    engine = create_async_engine(async_url(sql_url))
    try:
        async with engine.begin() as conn:
            applied = await conn.run_sync(
                lambda sync: schema.upgrade(sync, target=3, migrations=migrations)
            )
        async with engine.connect() as conn:
            channel = await conn.scalar(text("SELECT channel FROM conversations"))
    finally:
        await engine.dispose()

    assert applied == [2, 3]
    assert channel is None
    assert [v for v, _ in await versions(sql_url)] == [1, 2, 3]


async def test_a_missing_migration_step_is_an_error(sql_url: str) -> None:
    async with SQLStore(sql_url):
        pass
    engine = create_async_engine(async_url(sql_url))
    try:
        async with engine.begin() as conn:
            with pytest.raises(ConfigError, match="from schema version 1 to 2"):
                await conn.run_sync(lambda sync: schema.upgrade(sync, target=2, migrations=[]))
    finally:
        await engine.dispose()


async def test_a_database_newer_than_the_code_is_refused(sql_url: str) -> None:
    async with SQLStore(sql_url):
        pass
    engine = create_async_engine(async_url(sql_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                schema.schema_version.insert().values(
                    version=schema.SCHEMA_VERSION + 1, applied_at=0.0, description="future"
                )
            )
    finally:
        await engine.dispose()

    with pytest.raises(ConfigError, match="newer than this chatbot"):
        async with SQLStore(sql_url):
            pass


async def test_loading_the_last_session_is_an_index_range_scan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    async with SQLStore(url):
        pass
    query = (
        "EXPLAIN QUERY PLAN SELECT seq, data FROM events WHERE conversation_id = 'a' AND seq >= "
        "(SELECT session_start_seq FROM conversations WHERE id = 'a') ORDER BY seq"
    )
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            plan = " | ".join(row[-1] for row in await conn.execute(text(query)))
    finally:
        await engine.dispose()

    assert "SEARCH events USING" in plan and "(conversation_id=? AND seq>?)" in plan, plan
    assert "SCAN events" not in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.services
async def test_postgresql_can_serve_the_last_session_from_the_primary_key(
    postgres_url: str,
) -> None:
    async with SQLStore(postgres_url):
        pass
    engine = create_async_engine(async_url(postgres_url))
    try:
        async with engine.connect() as conn:
            # The tables are tiny, so tell the planner to use an index if there is one.
            await conn.execute(text("SET enable_seqscan = off"))
            rows = await conn.execute(
                text(
                    "EXPLAIN SELECT seq, data FROM events WHERE conversation_id = 'a' AND seq >= "
                    "(SELECT session_start_seq FROM conversations WHERE id = 'a') ORDER BY seq"
                )
            )
            plan = "\n".join(row[0] for row in rows)
    finally:
        await engine.dispose()

    assert "Index Scan using events_conversation_seq_key on events" in plan, plan
    assert "Sort" not in plan, plan


async def test_a_closed_store_can_be_used_again(sql_url: str) -> None:
    store = SQLStore(sql_url)
    try:
        await store.append("alice", [{"event": "user", "text": "hi"}], start_seq=0)
        await store.close()
        await store.append("alice", [{"event": "user", "text": "again"}], start_seq=1)
        assert [e["text"] for e in (await store.load("alice")).events] == ["hi", "again"]
    finally:
        await store.close()


async def test_a_database_with_another_programs_events_table_is_refused_untouched(
    sql_url: str,
) -> None:
    """Rasa's tracker store keeps a table `events` too (id, sender_id, type_name, ...): a store
    started on it stamped our schema into the database and then failed every message."""
    engine = create_async_engine(async_url(sql_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255))")
            )
        with pytest.raises(ConfigError, match="already has a table 'events' that is not this"):
            async with SQLStore(sql_url):
                pass
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sorted(inspect(sync).get_table_names()))
            assert tables == ["events"]  # nothing created or stamped
            await conn.execute(text("DROP TABLE events"))
            await conn.commit()
    finally:
        await engine.dispose()


async def test_the_time_columns_keep_a_unix_time_to_the_microsecond(sql_url: str) -> None:
    """For a user's own SQL: MySQL's FLOAT is single precision, a Unix time off by minutes."""
    now = 1_796_000_000.123456
    async with SQLStore(sql_url) as store:
        await store.append(
            "alice", [{"event": "user", "text": "hi", "timestamp": now}], start_seq=0
        )
    engine = create_async_engine(async_url(sql_url))
    try:
        async with engine.connect() as conn:
            stamped = await conn.scalar(select(schema.events.c.timestamp))
            created = await conn.scalar(select(schema.conversations.c.created_at))
    finally:
        await engine.dispose()
    assert stamped == now
    assert created is not None and abs(created - time.time()) < 60


@pytest.mark.services
async def test_mysql_tables_hold_every_character_whatever_the_databases_default(
    mysql_url: str,
) -> None:
    """A database made with MySQL 5.7's default (latin1) held no emoji, nor any CJK text."""
    engine = create_async_engine(async_url(mysql_url))
    try:
        async with engine.connect() as conn:
            name = make_url(mysql_url).database
            await conn.execute(text(f"ALTER DATABASE `{name}` CHARACTER SET latin1"))
    finally:
        await engine.dispose()
    events = [{"event": "user", "text": "hi 😀 你好", "parse_data": {"entities": ["Zürich"]}}]
    async with SQLStore(mysql_url) as store:
        await store.append("ünïcode 😀", events, start_seq=0)
        assert (await store.load("ünïcode 😀")).events == events


@pytest.mark.services
async def test_mysql_tables_are_committed_before_the_schema_lock_is_released(
    mysql_url: str,
) -> None:
    """MySQL's named lock belongs to the connection, not to the transaction: the process that
    takes it next must see the version row, or it refuses the new tables as another program's
    (two servers starting together on an empty database, seen failing under load)."""
    engine = create_async_engine(async_url(mysql_url))
    try:
        async with engine.connect() as conn:
            await conn.begin()
            assert await conn.run_sync(schema.upgrade) == [schema.SCHEMA_VERSION]
            # The lock is released and the caller's transaction still open: another
            # connection already sees the version.
            assert await versions(mysql_url) == [(schema.SCHEMA_VERSION, "created")]
            await conn.rollback()
    finally:
        await engine.dispose()
    async with SQLStore(mysql_url):  # and the database is ours, as after any start
        pass
