"""Real PostgreSQL, MySQL (MariaDB), Redis and RabbitMQ for tests, and a TCP proxy to make them
go away and come back.

Addresses come from the environment:

- ``CHATBOT_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``):
  a server and a database to connect to; each test gets an empty database of its own on that
  server (``chatbot_test_<random>``; emptied after the test and lent to the next one, dropped
  when the test process exits).
- ``CHATBOT_TEST_MYSQL_URL`` (default ``mysql://root@127.0.0.1:3306/test``): a MySQL or MariaDB
  server; each test gets an empty database of its own there (``chatbot_test_<random>``, dropped
  after the test).
- ``CHATBOT_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``): each test gets a key prefix
  of its own, and its keys are deleted afterwards.
- ``CHATBOT_TEST_RABBITMQ_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``): for the event
  broker; each test declares queues and an exchange of its own and deletes them.

A service that cannot be reached skips the test, saying why, unless ``CHATBOT_REQUIRE_SERVICES=1``
(as in CI), where it fails the test.

Use the fixtures from a ``conftest.py``::

    from tests.services import mysql_url, postgres_url, redis_key_prefix, redis_url  # noqa: F401
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Coroutine
from typing import Any, NoReturn

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy import make_url

POSTGRES_URL_ENV = "CHATBOT_TEST_POSTGRES_URL"
MYSQL_URL_ENV = "CHATBOT_TEST_MYSQL_URL"
REDIS_URL_ENV = "CHATBOT_TEST_REDIS_URL"
RABBITMQ_URL_ENV = "CHATBOT_TEST_RABBITMQ_URL"
REQUIRE_SERVICES_ENV = "CHATBOT_REQUIRE_SERVICES"

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
_URL_ENV = {
    "PostgreSQL": POSTGRES_URL_ENV,
    "MySQL": MYSQL_URL_ENV,
    "Redis": REDIS_URL_ENV,
    "RabbitMQ": RABBITMQ_URL_ENV,
}

_CONNECT_TIMEOUT = 3.0
# Why a service was unreachable, once found out, so later tests skip without waiting again.
_unreachable: dict[str, str] = {}


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def redis_server_url() -> str:
    return os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def services_required() -> bool:
    return os.environ.get(REQUIRE_SERVICES_ENV) == "1"


def unavailable(service: str, url: str, reason: str) -> NoReturn:
    """Skip the test, or fail it when ``CHATBOT_REQUIRE_SERVICES=1``."""
    shown = make_url(url).render_as_string(hide_password=True) if "://" in url else url
    if services_required():
        pytest.fail(
            f"{service} at {shown} is unreachable ({reason}) and {REQUIRE_SERVICES_ENV}=1",
            pytrace=False,
        )
    pytest.skip(
        f"{service} at {shown} is unreachable ({reason}); set {_URL_ENV[service]} to use "
        f"another, {REQUIRE_SERVICES_ENV}=1 to fail instead"
    )


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+asyncpg://...``) as the DSN asyncpg itself accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_admin() -> asyncpg.Connection:
    url = postgres_server_url()
    if url in _unreachable:
        unavailable("PostgreSQL", url, _unreachable[url])
    try:
        return await asyncpg.connect(asyncpg_dsn(url), timeout=_CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as error:
        _unreachable[url] = str(error) or type(error).__name__
        unavailable("PostgreSQL", url, _unreachable[url])


class _DatabasePool:
    """Test databases, each lent to one test at a time.

    ``CREATE DATABASE`` and ``DROP DATABASE`` each take a second or more where the disk syncs
    for real, so a database a test gives back is emptied instead (its connections terminated,
    every schema dropped and ``public`` created again) and lent to the next test. The pool's
    databases are dropped when the test process exits.
    """

    def __init__(self) -> None:
        self.free: list[str] = []
        self.created: list[str] = []

    async def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"chatbot_test_{secrets.token_hex(6)}"
        admin = await _postgres_admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        if not self.created:
            atexit.register(self.drop_all)
        self.created.append(name)
        return name

    async def give_back(self, name: str) -> None:
        admin = await _postgres_admin()
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            url = make_url(postgres_server_url()).set(database=name)
            conn = await asyncpg.connect(asyncpg_dsn(url.render_as_string(False)))
            try:
                schemas = await conn.fetch(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                    "AND nspname <> 'information_schema'"
                )
                for row in schemas:
                    await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')
                await conn.execute("CREATE SCHEMA public")
            finally:
                await conn.close()
            self.free.append(name)
        except (OSError, asyncpg.PostgresError):
            # Could not empty it: drop it instead.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.created.remove(name)
        finally:
            await admin.close()

    def drop_all(self) -> None:
        async def drop() -> None:
            admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url()))
            try:
                for name in self.created:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()

        with contextlib.suppress(OSError, asyncpg.PostgresError):
            asyncio.run(drop())
        self.created.clear()
        self.free.clear()


_databases = _DatabasePool()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty PostgreSQL database that is this test's alone."""
    name = await _databases.take()
    try:
        yield make_url(postgres_server_url()).set(database=name).render_as_string(False)
    finally:
        await _databases.give_back(name)


def mysql_server_url() -> str:
    return os.environ.get(MYSQL_URL_ENV) or DEFAULT_MYSQL_URL


async def _mysql_admin(statement: str) -> None:
    """Run one statement on the test MySQL server, as its URL's user."""
    import asyncmy

    url = mysql_server_url()
    if url in _unreachable:
        unavailable("MySQL", url, _unreachable[url])
    parsed = make_url(url)
    try:
        conn = await asyncmy.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
            connect_timeout=_CONNECT_TIMEOUT,
        )
    except (OSError, asyncio.TimeoutError, asyncmy.errors.MySQLError) as error:
        _unreachable[url] = str(error) or type(error).__name__
        unavailable("MySQL", url, _unreachable[url])
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(statement)
    finally:
        conn.close()


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty MySQL database that is this test's alone."""
    name = f"chatbot_test_{secrets.token_hex(6)}"
    await _mysql_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield make_url(mysql_server_url()).set(database=name).render_as_string(False)
    finally:
        await _mysql_admin(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The URL of the test Redis, once it has answered a PING."""
    url = redis_server_url()
    if url in _unreachable:
        unavailable("Redis", url, _unreachable[url])
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=_CONNECT_TIMEOUT, retry=Retry(NoBackoff(), 0)
    )
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        _unreachable[url] = str(error) or type(error).__name__
        unavailable("Redis", url, _unreachable[url])
    finally:
        await client.aclose()
    yield url


@pytest.fixture
async def redis_key_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted after the test."""
    prefix = f"chatbot-test:{secrets.token_hex(6)}:"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to a server. ``stop()`` cuts every connection and stops
    listening (the server is "gone"); ``start()`` listens again on the same port.
    ``sever_quietly()`` cuts every connection to the server but leaves the clients' ends open
    until they next send something (then closes them): a connection that died without its
    client noticing, as after a network fault. ``lose_next_replies()`` lets every connection's
    next request through but cuts the connection when the server answers it: the server did
    the work, and its client cannot know. ``lose_reply_to(marker)`` does that to the answer of the
    next request holding ``marker`` (``b"COMMIT"``: a transaction committed, its client told
    nothing); with ``request_too`` that request is lost as well (nothing committed)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # client end -> (its reader, the server end's writer)
        self._links: dict[
            asyncio.StreamWriter, tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = {}
        # client end -> (the task piping the server's answers to it, the server end's reader)
        self._answers: dict[asyncio.StreamWriter, tuple[asyncio.Task[None], asyncio.StreamReader]]
        self._answers = {}
        self._marker: bytes | None = None  # ``lose_reply_to``'s, until a request holds it
        self._drop_request = False
        self._doomed: set[asyncio.StreamWriter] = set()  # clients whose next answer is cut

    def lose_reply_to(self, marker: bytes, *, request_too: bool = False) -> None:
        self._marker, self._drop_request = marker, request_too

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._writers.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        self._links[writer] = (reader, up_writer)
        self._spawn(self._pipe(reader, up_writer, client=writer, request=True))
        self._answers[writer] = (
            self._spawn(self._pipe(up_reader, writer, client=writer)),
            up_reader,
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def lose_next_replies(self) -> None:
        answers, self._answers = self._answers, {}
        for task, _ in answers.values():
            task.cancel()
        await asyncio.gather(*(task for task, _ in answers.values()), return_exceptions=True)
        for client, (_, up_reader) in answers.items():
            self._spawn(self._close_on_next_data(up_reader, client))

    async def sever_quietly(self) -> None:
        links, self._links = self._links, {}
        self._answers = {}
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client, (reader, upstream) in links.items():
            upstream.close()
            self._writers.discard(upstream)
            self._spawn(self._close_on_next_data(reader, client))

    async def _close_on_next_data(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await reader.read(1)
        finally:
            writer.close()

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        client: asyncio.StreamWriter | None = None,
        request: bool = False,
    ) -> None:
        try:
            while data := await source.read(65536):
                if request and client and self._marker is not None and self._marker in data:
                    self._marker = None
                    if self._drop_request:  # neither the request nor its answer
                        client.close()
                        break
                    self._doomed.add(client)
                elif not request and client in self._doomed:
                    self._doomed.discard(client)
                    break  # the answer is dropped and the client's connection closed
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        sink.close()  # the source ended; not when cancelled (``sever_quietly`` keeps the sink)


@pytest.fixture
async def rabbitmq_url() -> AsyncIterator[str]:
    """The URL of the test RabbitMQ, once a connection to it has opened."""
    import aio_pika

    url = os.environ.get(RABBITMQ_URL_ENV) or DEFAULT_RABBITMQ_URL
    if url in _unreachable:
        unavailable("RabbitMQ", url, _unreachable[url])
    try:
        connection = await aio_pika.connect(url, timeout=_CONNECT_TIMEOUT)
    except Exception as error:  # aio-pika raises several kinds for an absent server
        _unreachable[url] = str(error) or type(error).__name__
        unavailable("RabbitMQ", url, _unreachable[url])
    await connection.close()
    yield url
