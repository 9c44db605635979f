"""The SQL store's PostgreSQL side of a turn (next_seq, load, append) on asyncpg directly.

A turn's statements run on a pool of asyncpg's own, as SQL written once: SQLAlchemy's work per
statement and per pool checkout (compiling, its greenlet bridge, the pool's reset on checkin,
result rows) cost more CPU than asyncpg's own (a REST turn on PostgreSQL took 2.0-2.5 ms of the
server's CPU through SQLAlchemy). The store's other calls (schema, listing, health) keep
SQLAlchemy's engine and its pool. asyncpg's pool replaces a connection the server closed when it is
next acquired. An append is one statement, so it needs no transaction around it (no BEGIN and
COMMIT round trips): a data-modifying CTE claims the conversation row (compare-and-set of
``next_seq``, or the insert of a new row), and the events are inserted only where the claim
succeeded (``FROM claim`` yields no row otherwise). ``append`` says whether it claimed; a
unique-key violation (a writer that lost its lock) comes out as asyncpg's ``UniqueViolationError``.

A pooled connection that died without asyncpg seeing it yet (a server restart, a cut network) fails
its statement: the connection is dropped from the pool and the statement runs once more on a fresh
one. For an append that failed so, whether the server ran it is unknown: if the retry finds the row
already claimed, the events stored at those seqs are compared with ours, and equal ones mean the
first attempt had committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import URL

from chatbot.store.base import EncodedEvent

T = TypeVar("T")

NEXT_SEQ = "SELECT next_seq FROM conversations WHERE id = $1"
LOAD_ALL = "SELECT seq, data FROM events WHERE conversation_id = $1 ORDER BY seq"
LOAD_SINCE = "SELECT seq, data FROM events WHERE conversation_id = $1 AND seq >= $2 ORDER BY seq"
# One statement, so the session start and the events are read from one snapshot.
LOAD_SESSION = (
    "SELECT seq, data FROM events WHERE conversation_id = $1 AND seq >= "
    "(SELECT session_start_seq FROM conversations WHERE id = $1) ORDER BY seq"
)
STORED_DATA = (
    "SELECT data FROM events WHERE conversation_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
)
# The events of a batch, as arrays: $1 conversation id, $2 seqs, $3 type names, $4 timestamps,
# $5 data; $6 the time now, $7 the seq after the batch, $8 the batch's last session start or
# NULL, $9 (moving on only) the seq the row must be at.
_INSERT_EVENTS = (
    "INSERT INTO events (conversation_id, seq, type_name, timestamp, data) "
    "SELECT $1, e.seq, e.type_name, e.ts, e.data FROM claim, "
    "unnest($2::integer[], $3::varchar[], $4::float8[], $5::text[]) AS e(seq, type_name, ts, data)"
)
APPEND_NEW = (
    "WITH claim AS (INSERT INTO conversations "
    "(id, created_at, updated_at, next_seq, session_start_seq) "
    "VALUES ($1, $6, $6, $7, COALESCE($8::integer, 0)) ON CONFLICT (id) DO NOTHING RETURNING id) "
    + _INSERT_EVENTS
)
APPEND_MOVE_ON = (
    "WITH claim AS (UPDATE conversations SET next_seq = $7, updated_at = $6, "
    "session_start_seq = COALESCE($8::integer, session_start_seq) "
    "WHERE id = $1 AND next_seq = $9 RETURNING id) " + _INSERT_EVENTS
)

# Errors of the connection itself (not of a statement): the server went away or closed it.
# ``InternalClientError``: a terminated backend's goodbye arrived while the connection sat in the
# pool, and the next statement finds the protocol in the middle of closing.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)
# Every error these calls can raise for a database that cannot serve them (a unique-key
# violation aside, which the caller handles as a conflict).
ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """A connection going back to the pool needs no reset query (a round trip per release, by
    default): these statements change no session state. (The pool still rolls back a transaction
    left open.)"""


class PostgresTurns:
    """A turn's statements on a pool of asyncpg connections to ``url``'s database, made on
    first use (a pool belongs to the event loop it was made on)."""

    def __init__(
        self, url: URL, *, connect_timeout: float, max_size: int, acquire_timeout: float
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = connect_timeout
        self._max_size = max_size
        self._acquire_timeout = acquire_timeout
        self._pool: asyncpg.Pool | None = None
        self._making: asyncio.Lock | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._making = self._making or asyncio.Lock()
            async with self._making:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,  # connections are made as calls need them
                        max_size=self._max_size,
                        timeout=self._connect_timeout,
                        reset=_keep_session,
                    )
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _call(self, work: Callable[[asyncpg.Connection, bool], Awaitable[T]]) -> T:
        """``work(connection, retry)`` on a pooled connection, and once more (``retry`` True) on
        a fresh one when that connection turns out to be dead."""
        try:
            return await self._once(work, retry=False)
        except _CONNECTION_LOST:
            return await self._once(work, retry=True)

    async def _once(
        self, work: Callable[[asyncpg.Connection, bool], Awaitable[T]], *, retry: bool
    ) -> T:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout) as db:
            try:
                return await work(db, retry)
            except _CONNECTION_LOST:
                db.terminate()  # its slot in the pool connects anew when next acquired
                raise

    async def next_seq(self, conversation_id: str) -> int:
        value = await self._call(lambda db, _: db.fetchval(NEXT_SEQ, conversation_id))
        return int(value) if value is not None else 0

    async def load(self, conversation_id: str, *, all_sessions: bool) -> list[Any]:
        """The rows ``(seq, data)`` of the conversation's last session (or all of it)."""
        query = LOAD_ALL if all_sessions else LOAD_SESSION
        rows: list[Any] = await self._call(lambda db, _: db.fetch(query, conversation_id))
        return rows

    async def load_since(self, conversation_id: str, seq: int) -> list[Any]:
        """The rows ``(seq, data)`` of the conversation from ``seq`` on."""
        rows: list[Any] = await self._call(lambda db, _: db.fetch(LOAD_SINCE, conversation_id, seq))
        return rows

    async def append(
        self,
        conversation_id: str,
        encoded: Sequence[EncodedEvent],
        *,
        start_seq: int,
        now: float,
        session_start: int | None,
    ) -> bool:
        """Claim the conversation at ``start_seq`` and insert the events, in one statement.
        False: another writer had moved the conversation on (nothing written)."""
        end = start_seq + len(encoded)
        args: list[Any] = [
            conversation_id,
            [e.seq for e in encoded],
            [e.type_name[:64] for e in encoded],
            [e.timestamp for e in encoded],
            [e.data for e in encoded],
            now,
            end,
            session_start,
        ]
        if start_seq == 0:
            statement = APPEND_NEW
        else:
            statement, args = APPEND_MOVE_ON, [*args, start_seq]

        async def write(db: asyncpg.Connection, retry: bool) -> bool:
            status = await db.execute(statement, *args)  # "INSERT 0 <rows>"
            if status.rsplit(" ", 1)[-1] != "0":
                return True
            if not retry:
                return False
            # The first try may have committed before its connection died: our events there?
            stored = await db.fetch(STORED_DATA, conversation_id, start_seq, end)
            return [row[0] for row in stored] == [e.data for e in encoded]

        return await self._call(write)
