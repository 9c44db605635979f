"""A database or Redis that is not there: StoreUnavailable with a clear message, then recovery."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url

from chatbot.errors import ConflictError, StoreUnavailable
from chatbot.store import SQLStore
from chatbot.store.redis_lock import RedisLockStore
from tests.helpers import free_port, refusing_port
from tests.services import TcpProxy, asyncpg_dsn, postgres_server_url

HELLO = [{"event": "user", "text": "hello"}]


def assert_clear(error: pytest.ExceptionInfo[StoreUnavailable], *needles: str) -> None:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert "sqlalchemy" not in message.lower(), message
    for needle in needles:
        assert needle in message, message
    # Raised "from None": printing it shows no chained driver traceback.
    assert error.value.__suppress_context__ and error.value.__cause__ is None


async def test_sqlite_in_a_missing_folder_is_unavailable_until_the_folder_exists(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not-yet"
    store = SQLStore(f"sqlite:///{folder / 'conversations.db'}")
    try:
        with pytest.raises(StoreUnavailable) as error:
            await store.append("alice", HELLO, start_seq=0)
        assert_clear(error, "conversation store unavailable", "not-yet", "does not exist")
        assert await store.ping() is False

        folder.mkdir()

        assert await store.ping() is True
        await store.append("alice", HELLO, start_seq=0)
        assert (await store.load("alice")).events == HELLO
    finally:
        await store.close()


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.services),
        pytest.param("mysql", marks=pytest.mark.services),
    ]
)
def server_url(request: pytest.FixtureRequest) -> str:
    """An empty database of this test's own on the test PostgreSQL, then MySQL."""
    return str(
        request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mysql_url")
    )


async def test_a_database_that_goes_away_is_unavailable_and_recovers(server_url: str) -> None:
    target = make_url(server_url)
    dialect = target.get_backend_name()
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or DEFAULT_PORTS[dialect])
    port = await proxy.start()
    store = SQLStore(target.set(host="127.0.0.1", port=port), connect_timeout=2.0)
    try:
        await store.append("alice", HELLO, start_seq=0)

        await proxy.stop()  # the server is gone, and every pooled connection with it

        with pytest.raises(StoreUnavailable) as error:
            await store.load("alice")
        assert_clear(error, "conversation store unavailable", f"{dialect} at 127.0.0.1:{port}")
        with pytest.raises(StoreUnavailable):
            await store.append("alice", HELLO, start_seq=1)
        assert await store.ping() is False

        await proxy.start()  # back, on the same address

        assert await store.ping() is True
        assert (await store.load("alice")).events == HELLO
        await store.append("alice", HELLO, start_seq=1)
        assert (await store.load("alice")).next_seq == 2
    finally:
        await store.close()
        await proxy.stop()


@pytest.mark.services
async def test_postgresql_backends_terminated_under_the_store_cost_no_failed_call(
    postgres_url: str,
) -> None:
    async with SQLStore(postgres_url) as store:
        await store.append("alice", HELLO, start_seq=0)
        name = make_url(postgres_url).database
        admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url()))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        assert killed >= 1

        # The pool checks connections before use and replaces the dead ones.
        assert (await store.load("alice")).events == HELLO
        await store.append("alice", HELLO, start_seq=1)


@contextlib.asynccontextmanager
async def store_behind_a_proxy(
    url: str, default_port: int = 5432
) -> AsyncIterator[tuple[SQLStore, TcpProxy]]:
    """A store whose database connections go through a ``TcpProxy`` the test can cut."""
    target = make_url(url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or default_port)
    port = await proxy.start()
    store = SQLStore(target.set(host="127.0.0.1", port=port))
    try:
        yield store, proxy
    finally:
        await store.close()
        await proxy.stop()


async def test_connections_dead_unnoticed_cost_no_failed_call(server_url: str) -> None:
    # The pooled connections' server ends are gone (a restart, MySQL's wait_timeout), and the
    # client finds out only when it sends. PostgreSQL (no pre-ping round trip catches it first):
    # the first statement fails, nothing was committed, and the call runs again on a fresh
    # connection; MySQL: the ping as the connection leaves the pool finds it dead.
    port = DEFAULT_PORTS[make_url(server_url).get_backend_name()]
    async with store_behind_a_proxy(server_url, port) as (store, proxy):
        await store.append("alice", HELLO, start_seq=0)
        await proxy.sever_quietly()
        assert (await store.load("alice")).events == HELLO
        await proxy.sever_quietly()
        await store.append("alice", HELLO, start_seq=1)
        await proxy.sever_quietly()
        assert await store.next_seq("alice") == 2
        assert (await store.load("alice")).events == HELLO * 2


async def test_postgresql_with_nothing_listening_is_unavailable_with_the_reason() -> None:
    port = free_port()
    store = SQLStore(f"postgresql://nobody:secret@127.0.0.1:{port}/nowhere")
    try:
        with pytest.raises(StoreUnavailable) as error:
            await store.load("alice")
        assert_clear(error, f"postgresql at 127.0.0.1:{port}/nowhere", "Connect call failed")
        assert "secret" not in str(error.value)
        with pytest.raises(StoreUnavailable):
            async with store:
                pass
    finally:
        await store.close()


async def test_a_database_that_does_not_exist_is_unavailable(server_url: str) -> None:
    store = SQLStore(make_url(server_url).set(database="chatbot_test_no_such_database"))
    said = {
        "postgresql": 'database "chatbot_test_no_such_database" does not exist',
        "mysql": "Unknown database 'chatbot_test_no_such_database'",
    }[store.dialect]
    try:
        with pytest.raises(StoreUnavailable) as error:
            await store.conversation_ids()
        assert_clear(error, said)
    finally:
        await store.close()


async def test_redis_with_nothing_listening_is_unavailable() -> None:
    port = free_port()
    locks = RedisLockStore(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(StoreUnavailable) as error:
            async with locks.lock("alice"):
                pass
        assert_clear(error, "lock store unavailable", f"redis at 127.0.0.1:{port}/0")
        assert await locks.ping() is False
    finally:
        await locks.close()


@pytest.mark.services
async def test_redis_that_goes_away_is_unavailable_and_recovers(
    redis_url: str, redis_key_prefix: str
) -> None:
    target = make_url(redis_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379)
    port = await proxy.start()
    locks = RedisLockStore(
        f"redis://127.0.0.1:{port}/{target.database or 0}", key_prefix=redis_key_prefix
    )
    try:
        async with locks.lock("alice"):
            pass

        await proxy.stop()
        with pytest.raises(StoreUnavailable):
            async with locks.lock("alice"):
                pass

        await proxy.start()
        async with locks.lock("alice"):
            assert await locks.queue_length("alice") == 1
    finally:
        await locks.close()
        await proxy.stop()


async def test_a_write_whose_answer_was_lost_is_not_a_conflict(server_url: str) -> None:
    # The append reaches the server and commits, but the connection dies before its answer comes
    # back. The retry finds the conversation already moved on, sees our own events at those seqs,
    # and reports success: no ConflictError for a write that happened, and nothing twice.
    other = [{"event": "user", "text": "someone else", "timestamp": 2.0}]
    port = DEFAULT_PORTS[make_url(server_url).get_backend_name()]
    async with store_behind_a_proxy(server_url, port) as (store, proxy):
        await store.append("alice", HELLO, start_seq=0)
        await proxy.lose_next_replies()
        await store.append("alice", HELLO, start_seq=1)
        assert (await store.load("alice")).events == HELLO * 2
        # A writer that really lost the race still gets its conflict, also after a lost answer.
        await proxy.lose_next_replies()
        with pytest.raises(ConflictError):
            await store.append("alice", other, start_seq=1)
        assert (await store.load("alice")).events == HELLO * 2


async def test_mysql_with_nothing_listening_is_unavailable_with_the_reason() -> None:
    with refusing_port() as port:
        store = SQLStore(f"mysql+pymysql://nobody:secret@127.0.0.1:{port}/nowhere")
        try:
            with pytest.raises(StoreUnavailable) as error:
                await store.load("alice")
            assert_clear(error, f"mysql at 127.0.0.1:{port}/nowhere", "Can't connect")
            assert "secret" not in str(error.value)
        finally:
            await store.close()


@pytest.mark.services
async def test_a_mysql_commit_whose_answer_was_lost_is_no_failure(mysql_url: str) -> None:
    """The COMMIT reached the server and the connection died before its answer came back: the
    turn was stored. The store finds our events there and says so, instead of an apology to a
    user whose message was in fact answered (and a conflict at the next one)."""
    async with store_behind_a_proxy(mysql_url, 3306) as (store, proxy):
        await store.append("alice", HELLO, start_seq=0)
        proxy.lose_reply_to(b"COMMIT")
        await store.append("alice", HELLO, start_seq=1)
        assert (await store.load("alice")).events == HELLO * 2
        # A COMMIT that never reached the server: nothing stored, so the append runs again.
        proxy.lose_reply_to(b"COMMIT", request_too=True)
        await store.append("alice", HELLO, start_seq=2)
        assert (await store.load("alice")).events == HELLO * 3
        # A writer that really lost the race still gets its conflict.
        with pytest.raises(ConflictError):
            await store.append("alice", [{"event": "user", "text": "another"}], start_seq=2)
