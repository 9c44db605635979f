"""Rasa's environment variables for a PostgreSQL tracker store: $POSTGRESQL_SCHEMA (the tables
live in that schema, which must exist) and $POSTGRESQL_POOL_SIZE / $POSTGRESQL_MAX_OVERFLOW."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url

from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from chatbot.store import SQLStore, create_store
from tests.services import asyncpg_dsn

ORIGIN = Origin("/bots/shop/endpoints.yml", 3)
HELLO = [{"event": "user", "text": "hello"}]


def block(url: str, **params: Any) -> EndpointBlock:
    return EndpointBlock("tracker_store", {"type": "sql", "url": url, **params}, ORIGIN)


async def tables_by_schema(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_schema"], set()).add(row["table_name"])
    return found


@pytest.mark.services
async def test_the_tables_live_in_the_schema_postgresql_schema_names(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await conn.execute('CREATE SCHEMA "Bot Data"')  # case and a space: kept as written
    finally:
        await conn.close()
    monkeypatch.setenv("POSTGRESQL_SCHEMA", "Bot Data")
    store = create_store(block(postgres_url), default_sqlite_path=None)
    assert isinstance(store, SQLStore) and store.schema == "Bot Data"
    assert store.describe().endswith("(schema Bot Data)")
    try:
        await store.append("ann", HELLO, start_seq=0)
        assert (await store.load("ann")).events == HELLO
        assert await store.conversation_ids() == ["ann"]
    finally:
        await store.close()
    tables = await tables_by_schema(postgres_url)
    assert "events" in tables.get("Bot Data", set()), tables
    assert not tables.get("public"), tables

    # Without the variable, the same database's public schema is another, empty store.
    monkeypatch.delenv("POSTGRESQL_SCHEMA")
    other = create_store(block(postgres_url), default_sqlite_path=None)
    try:
        assert await other.conversation_ids() == []
    finally:
        await other.close()


@pytest.mark.services
async def test_a_schema_that_does_not_exist_is_a_clear_error(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRESQL_SCHEMA", "nowhere")
    store = create_store(block(postgres_url), default_sqlite_path=None)
    try:
        with pytest.raises(ConfigError, match=r"the schema 'nowhere' \(\$POSTGRESQL_SCHEMA\)"):
            await store.start()
    finally:
        await store.close()
    assert not await tables_by_schema(postgres_url)  # nothing created anywhere


def test_the_schema_applies_to_postgresql_only(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRESQL_SCHEMA", "bot")
    store = create_store(block(f"sqlite:///{tmp_path / 'c.db'}"), default_sqlite_path=None)
    assert isinstance(store, SQLStore) and store.schema is None


@pytest.mark.parametrize(
    ("env", "params", "sizes"),
    [
        ({}, {}, (10, 20)),
        ({"POSTGRESQL_POOL_SIZE": "50", "POSTGRESQL_MAX_OVERFLOW": "0"}, {}, (50, 0)),
        ({"POSTGRESQL_POOL_SIZE": "50"}, {"pool_size": 4, "max_overflow": 2}, (4, 2)),
    ],
)
def test_pool_sizes_come_from_the_block_then_the_environment(
    env: dict[str, str],
    params: dict[str, int],
    sizes: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("POSTGRESQL_POOL_SIZE", "POSTGRESQL_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = create_store(
        block("postgresql://bot@127.0.0.1:9/bot", **params), default_sqlite_path=None
    )
    assert isinstance(store, SQLStore) and store._engine is not None
    pool: Any = store._engine.pool
    assert (pool.size(), pool._max_overflow) == sizes


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POSTGRESQL_POOL_SIZE", "0"),
        ("POSTGRESQL_POOL_SIZE", "many"),
        ("POSTGRESQL_MAX_OVERFLOW", "-1"),
    ],
)
def test_a_pool_size_in_the_environment_that_is_no_count_is_named(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"environment variable {name}: .*got '{value}'"):
        create_store(block("postgresql://bot@127.0.0.1:9/bot"), default_sqlite_path=None)


def test_the_url_keeps_its_own_query_beside_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRESQL_SCHEMA", "bot")
    store = create_store(
        block("postgresql://bot@127.0.0.1:9/bot?application_name=shop"), default_sqlite_path=None
    )
    assert isinstance(store, SQLStore)
    assert dict(make_url(store.url).query) == {
        "application_name": "shop",
        "search_path": '"bot"',
    }
