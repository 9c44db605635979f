"""endpoints.yml's tracker_store: and lock_store: blocks, as Rasa users write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from chatbot.store import (
    InMemoryLockStore,
    InMemoryStore,
    SQLStore,
    create_lock_store,
    create_store,
)
from chatbot.store.factory import redis_url, sql_urls
from chatbot.store.redis_lock import RedisLockStore
from chatbot.store.redis_store import RedisStore
from chatbot.store.sql import async_url
from tests.services import asyncpg_dsn

ORIGIN = Origin("/bots/shop/endpoints.yml", 7)


def tracker_store(**params: Any) -> EndpointBlock:
    return EndpointBlock("tracker_store", params, ORIGIN)


def lock_store(**params: Any) -> EndpointBlock:
    return EndpointBlock("lock_store", params, ORIGIN)


@pytest.mark.parametrize(
    ("params", "url"),
    [
        (  # Rasa's documented PostgreSQL block
            {
                "type": "SQL",
                "dialect": "postgresql",
                "url": "db.example.com",
                "port": 5433,
                "db": "rasa",
                "username": "bot",
                "password": "s3cret",
            },
            "postgresql+asyncpg://bot:s3cret@db.example.com:5433/rasa",
        ),
        (  # the port inside the host, and as a string
            {"type": "sql", "dialect": "postgresql", "url": "db:6543", "port": "1", "db": "r"},
            "postgresql+asyncpg://db:6543/r",
        ),
        (
            {"type": "sql", "dialect": "postgresql", "url": "db", "db": "r", "query": {"a": 1}},
            "postgresql+asyncpg://db/r?a=1",
        ),
        (  # a password that needs escaping in a URL
            {
                "type": "sql",
                "dialect": "postgres",
                "url": "db",
                "db": "r",
                "username": "u",
                "password": "p@ss/w",
            },
            "postgresql+asyncpg://u:p%40ss%2Fw@db/r",
        ),
        (
            {"type": "SQLTrackerStore", "dialect": "postgresql", "db": "r"},
            "postgresql+asyncpg:///r",
        ),
        (  # SQLite: the file relative to endpoints.yml
            {"type": "sql", "dialect": "sqlite", "db": "conversations.db"},
            "sqlite+aiosqlite:////bots/shop/conversations.db",
        ),
        ({"type": "sql", "dialect": "sqlite", "db": "/var/x.db"}, "sqlite+aiosqlite:////var/x.db"),
        ({"type": "sql"}, "sqlite+aiosqlite:////data/default.db"),  # no dialect: sqlite
        (  # whole URLs, sync drivers mapped to async ones
            {"type": "sql", "url": "postgresql://u@h:1/d"},
            "postgresql+asyncpg://u@h:1/d",
        ),
        ({"type": "sql", "url": "postgres://u@h/d"}, "postgresql+asyncpg://u@h/d"),
        ({"url": "postgresql+psycopg2://u@h/d"}, "postgresql+asyncpg://u@h/d"),  # no type
        ({"url": "postgresql+asyncpg://u@h/d"}, "postgresql+asyncpg://u@h/d"),
        ({"type": "sql", "url": "sqlite:////tmp/bot.db"}, "sqlite+aiosqlite:////tmp/bot.db"),
        ({"url": "sqlite+pysqlite:///rel.db"}, "sqlite+aiosqlite:///rel.db"),
        (  # MySQL and MariaDB, by any driver name Rasa users write: served by asyncmy
            {"type": "SQL", "dialect": "mysql+pymysql", "url": "db", "db": "rasa", "username": "u"},
            "mysql+asyncmy://u@db/rasa",
        ),
        (
            {"type": "sql", "dialect": "mysql", "url": "db:3307", "db": "r"},
            "mysql+asyncmy://db:3307/r",
        ),
        ({"url": "mysql+mysqldb://u:p@h/d?charset=utf8"}, "mysql+asyncmy://u:p@h/d?charset=utf8"),
        ({"url": "mariadb+mariadbconnector://u@h/d"}, "mariadb+asyncmy://u@h/d"),
        ({"url": "mysql+aiomysql://u@h/d"}, "mysql+asyncmy://u@h/d"),
    ],
)
async def test_sql_blocks_map_to_async_urls(params: dict[str, Any], url: str) -> None:
    block = tracker_store(**params)

    built, login = sql_urls(block, Path("/data/default.db"))
    store = create_store(block, default_sqlite_path=Path("/data/default.db"))
    try:
        assert built.render_as_string(hide_password=False) == url
        assert login is None
        assert isinstance(store, SQLStore)
        assert store.url == built
    finally:
        await store.close()


def test_login_db_gives_the_url_to_create_the_database_from() -> None:
    block = tracker_store(type="sql", dialect="postgresql", url="h", db="bot", login_db="postgres")

    url, login = sql_urls(block)

    assert str(url) == "postgresql+asyncpg://h/bot"
    assert str(login) == "postgresql+asyncpg://h/postgres"


@pytest.mark.services
async def test_login_db_creates_a_missing_database(postgres_url: str) -> None:
    """With libpq's URL options as Rasa users give them for psycopg2 (`query: {sslmode:
    disable}`): SQLAlchemy passed each to asyncpg as a keyword it does not take (a traceback
    at start)."""
    url = make_url(postgres_url)
    block = tracker_store(
        type="sql",
        dialect="postgresql",
        url=url.host,
        port=url.port,
        username=url.username,
        db=f"{url.database}_created",
        login_db=url.database,
        query={"sslmode": "disable", "application_name": "chatbot-test"},
    )
    async with create_store(block, default_sqlite_path=None) as store:
        await store.append("alice", [{"event": "user", "text": "hi"}], start_seq=0)
        assert [e["text"] for e in (await store.load("alice")).events] == ["hi"]
        assert await store.conversation_ids() == ["alice"]

    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await admin.execute(f'DROP DATABASE "{url.database}_created" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.services
async def test_login_db_creates_a_missing_mysql_database(mysql_url: str) -> None:
    url = make_url(mysql_url)
    created = f"{url.database}_created"
    block = tracker_store(
        type="sql",
        dialect="mysql+pymysql",
        url=url.host,
        port=url.port,
        username=url.username,
        db=created,
        login_db=url.database,
    )
    try:
        async with create_store(block, default_sqlite_path=None) as store:
            await store.append("alice", [{"event": "user", "text": "hi 😀"}], start_seq=0)
            assert [e["text"] for e in (await store.load("alice")).events] == ["hi 😀"]
        async with create_store(block, default_sqlite_path=None) as store:  # it exists now
            assert await store.conversation_ids() == ["alice"]
    finally:
        engine = create_async_engine(async_url(mysql_url))
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{created}`"))
        finally:
            await engine.dispose()


@pytest.mark.parametrize("type_name", ["in_memory", "InMemoryTrackerStore", "IN_MEMORY"])
def test_in_memory_blocks(type_name: str) -> None:
    store = create_store(tracker_store(type=type_name), default_sqlite_path=Path("/x.db"))

    assert isinstance(store, InMemoryStore)


async def test_no_block_is_sqlite_at_the_default_path(tmp_path: Path) -> None:
    path = tmp_path / ".chatbot" / "conversations.db"

    async with create_store(None, default_sqlite_path=path) as store:
        await store.append("alice", [{"event": "user", "text": "hi"}], start_seq=0)

    assert isinstance(store, SQLStore)
    assert path.is_file()


def test_no_block_and_no_default_path_is_in_memory() -> None:
    assert isinstance(create_store(None, default_sqlite_path=None), InMemoryStore)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"type": "mongod", "url": "mongodb://localhost"},
            "/bots/shop/endpoints.yml:7: tracker_store: unknown store type (key 'type', value "
            "'mongod'); known store types: in_memory, InMemoryTrackerStore, sql, "
            "SQLTrackerStore, redis, RedisTrackerStore (Rasa's 'mongod' tracker store is not "
            "provided; use sql)",
        ),
        (
            {"type": "my_package.stores.FancyStore"},
            "/bots/shop/endpoints.yml:7: tracker_store: unknown store type (key 'type', value "
            "'my_package.stores.FancyStore'); known store types: in_memory, "
            "InMemoryTrackerStore, sql, SQLTrackerStore, redis, RedisTrackerStore",
        ),
        (
            {"url": "localhost"},
            "/bots/shop/endpoints.yml:7: tracker_store: no 'type' given; known store types: "
            "in_memory, InMemoryTrackerStore, sql, SQLTrackerStore, redis, RedisTrackerStore "
            "(key 'type')",
        ),
    ],
)
def test_unknown_store_types_are_errors_that_say_where_and_what_is_known(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        create_store(tracker_store(**params), default_sqlite_path=Path("/x.db"))

    assert str(error.value) == message


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        (
            {"type": "sql", "dialect": "mssql", "db": "r"},
            ["endpoints.yml:7", "'mssql'", "mysql", "postgres"],
        ),
        ({"type": "sql", "url": "oracle://h/d"}, ["endpoints.yml:7", "'oracle'", "sqlite"]),
        ({"type": "sql", "dialect": "postgresql"}, ["endpoints.yml:7", "key 'db'"]),
        ({"type": "sql", "dialect": "postgresql", "db": "r", "port": "x"}, ["key 'port'", "'x'"]),
        ({"type": "sql", "dialect": "postgresql", "db": "r", "url": "h:abc"}, ["bad port"]),
        ({"type": "sql", "dialect": "postgresql", "db": "r", "query": "a=1"}, ["key 'query'"]),
        ({"type": "sql", "dialect": "sqlite", "db": "x.db", "pool_size": 0}, ["pool_size"]),
        ({"type": "sql", "url": "sqlite://"}, ["endpoints.yml:7", "in_memory"]),
        (  # a port that is no number in a whole URL: was a traceback at `chatbot run`
            {"type": "sql", "url": "postgresql://u:secret@h:notaport/db"},
            ["endpoints.yml:7", "not a database URL", "u:***@h:notaport"],
        ),
    ],
)
def test_bad_sql_settings_are_errors_that_say_where(
    params: dict[str, Any], needles: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        create_store(tracker_store(**params), default_sqlite_path=None)

    for needle in needles:
        assert needle in str(error.value)


def test_unknown_keys_are_reported_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    create_store(tracker_store(type="in_memory", colour="blue"), default_sqlite_path=None)

    assert "endpoints.yml:7: tracker_store: ignoring unknown key(s) colour" in caplog.text


# ----------------------------------------------------------------------------- lock stores


def test_no_lock_block_is_in_process_locks() -> None:
    assert isinstance(create_lock_store(None), InMemoryLockStore)


@pytest.mark.parametrize("type_name", ["in_memory", "InMemoryLockStore"])
def test_in_memory_lock_blocks(type_name: str) -> None:
    store = create_lock_store(lock_store(type=type_name, lock_lifetime=5, wait_timeout="7.5"))

    assert isinstance(store, InMemoryLockStore)
    assert (store.lock_lifetime, store.wait_timeout) == (5.0, 7.5)


@pytest.mark.parametrize(
    ("params", "url", "options"),
    [
        (  # Rasa's documented block
            {"type": "redis", "url": "cache", "port": 6380, "db": 2, "password": "pw"},
            "redis://cache:6380/2",
            {"password": "pw"},
        ),
        ({"type": "redis"}, "redis://localhost:6379/1", {}),  # Rasa's defaults: db 1
        ({"type": "RedisLockStore", "host": "h", "use_ssl": True}, "rediss://h:6379/1", {}),
        ({"type": "redis", "url": "redis://h:1/3"}, "redis://h:1/3", {}),
        (
            {"type": "redis", "url": "h", "username": "u", "socket_timeout": 3},
            "redis://h:6379/1",
            {"username": "u", "socket_timeout": 3.0},
        ),
        ({"type": "redis", "url": "cache:6380"}, "redis://cache:6380/1", {}),  # as SQL's url
    ],
)
async def test_redis_lock_blocks(params: dict[str, Any], url: str, options: dict[str, Any]) -> None:
    block = lock_store(**params)

    assert redis_url(block) == (url, options)
    store = create_lock_store(block)
    try:
        assert isinstance(store, RedisLockStore)
        assert store.key_prefix == "chatbot:lock:"
    finally:
        await store.close()


async def test_redis_lock_block_settings() -> None:
    block = lock_store(type="redis", key_prefix="shop", lock_lifetime=10, wait_timeout=3)

    store = create_lock_store(block)
    try:
        assert isinstance(store, RedisLockStore)
        assert (store.key_prefix, store.lock_lifetime, store.wait_timeout) == ("shop:lock:", 10, 3)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"type": "memcached"},
            "/bots/shop/endpoints.yml:7: lock_store: unknown lock store type (key 'type', value "
            "'memcached'); known lock store types: in_memory, InMemoryLockStore, redis, "
            "RedisLockStore",
        ),
        (
            {"url": "localhost"},
            "/bots/shop/endpoints.yml:7: lock_store: no 'type' given; known lock store types: "
            "in_memory, InMemoryLockStore, redis, RedisLockStore (key 'type')",
        ),
        (
            {"type": "redis", "lock_lifetime": -1},
            "/bots/shop/endpoints.yml:7: lock_store: lock_lifetime must be a positive number "
            "(key 'lock_lifetime', value -1)",
        ),
        (
            {"type": "redis", "port": float("inf")},  # YAML's .inf
            "/bots/shop/endpoints.yml:7: lock_store: port must be a positive number (key 'port', "
            "value inf)",
        ),
        (
            {"type": "redis", "wait_timeout": float("nan")},
            "/bots/shop/endpoints.yml:7: lock_store: wait_timeout must be a positive number (key "
            "'wait_timeout', value nan)",
        ),
        (
            {"type": "redis", "url": "http://cache"},
            "/bots/shop/endpoints.yml:7: lock_store: not a redis URL (key 'url', value "
            "'http://cache')",
        ),
        (
            {"type": "redis", "url": "{'host': 'cache'}"},  # a mapping written as text
            "/bots/shop/endpoints.yml:7: lock_store: not a host name or redis:// URL (key 'url', "
            "value \"{'host': 'cache'}\")",
        ),
        (
            {"type": "redis", "url": "redis://cache:port/0"},
            "/bots/shop/endpoints.yml:7: lock_store: not a host name or redis:// URL (key 'url', "
            "value 'redis://cache:port/0')",
        ),
        (
            {"type": "redis", "host": ["cache"]},
            "/bots/shop/endpoints.yml:7: lock_store: a host name or redis:// URL is text (key "
            "'host', value ['cache'])",
        ),
    ],
)
def test_bad_lock_blocks_are_errors_that_say_where(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_lock_store(lock_store(**params))

    assert str(error.value) == message


@pytest.mark.parametrize(
    ("params", "url", "prefix", "record_exp"),
    [
        # Rasa's documented block; db 0 is Rasa's default for the tracker store
        ({"type": "redis", "url": "cache", "port": 6380, "password": "pw"}, "redis://cache:6380/0",
         "chatbot:store:", 0),
        ({"type": "RedisTrackerStore", "url": "redis://h:1/3", "key_prefix": "shop",
          "record_exp": 30000}, "redis://h:1/3", "shop:store:", 30000),
    ],
)  # fmt: skip
async def test_redis_tracker_store_blocks(
    params: dict[str, Any], url: str, prefix: str, record_exp: int
) -> None:
    store = create_store(tracker_store(**params), default_sqlite_path=None)
    try:
        assert isinstance(store, RedisStore)
        assert (store.url, store.key_prefix, store.record_exp) == (url, prefix, record_exp)
    finally:
        await store.close()


def test_a_bad_record_exp_names_the_key() -> None:
    with pytest.raises(ConfigError, match="record_exp"):
        create_store(tracker_store(type="redis", record_exp=-5), default_sqlite_path=None)


@pytest.mark.parametrize(
    "params",
    [
        {"store_type": "SQL", "dialect": "sqlite", "db": "x.db"},
        {"type": "rasa.core.tracker_store.SQLTrackerStore", "dialect": "sqlite", "db": "x.db"},
        {"store_type": "sql", "type": "in_memory", "dialect": "sqlite", "db": "x.db"},
    ],
    ids=["store_type", "rasa-class-path", "store_type-wins"],
)
def test_rasas_other_ways_to_name_a_store_type(
    params: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's EndpointConfig takes `store_type` for `type` (and prefers it), and Rasa imports
    its own classes by their module path: both were "no 'type' given" / "unknown store type"."""
    params = {**params, "db": str(tmp_path / "x.db")}
    store = create_store(tracker_store(**params), default_sqlite_path=None)
    assert isinstance(store, SQLStore)
    assert "store_type" not in caplog.text  # not an unknown key either
    lock = create_lock_store(lock_store(type="rasa.core.lock_store.RedisLockStore", url="h"))
    assert isinstance(lock, RedisLockStore)
