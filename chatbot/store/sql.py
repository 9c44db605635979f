"""SQLStore: conversations in SQLite (embedded, the default), PostgreSQL or MySQL / MariaDB, via
SQLAlchemy asyncio.

Every read is one statement (so it sees one snapshot without a transaction around it: fewer
round trips), every write one short transaction: a compare-and-set on the conversation row,
then the events.

SQLite runs in WAL mode (readers never wait for the writer). The statements of a turn (next_seq,
load, append) run on the event loop's own thread, on one connection of the store's that never
waits: its busy timeout is 0, and a call that would wait for a lock held by another process (or
a database not in WAL mode) runs instead in a worker thread of the store, where the busy timeout
applies. SQLite answers these statements in microseconds, while a hop to a thread and back costs
0.1-0.2 ms on a 2-core machine, and SQLAlchemy's own work per statement as much again: the loop
path runs the statements' SQL, compiled once, on the stdlib driver. The loop connection does not
checkpoint the WAL itself (a checkpoint syncs the files to disk): a worker thread does, after
every ``_CHECKPOINT_EVERY`` writes. Everything else (schema, listing, health) runs whole in a
worker thread through SQLAlchemy's sync engine. Writes start with ``BEGIN IMMEDIATE`` and, within
one process, queue on an asyncio lock, since SQLite has one writer at a time anyway; writers of
other processes wait on the database lock (busy timeout).
On PostgreSQL, a turn's statements run on asyncpg directly, on a pool of its own, an append as
one statement without a transaction around it (``chatbot.store.postgresql_turns``); the rest
goes through SQLAlchemy's async engine.
On MySQL and MariaDB everything goes through SQLAlchemy's async engine on asyncmy, a turn's append
as one transaction as on SQLite (what differs there: ``chatbot.store.mysql_engine``).
A PostgreSQL connection that the server closed (a restart, a terminated backend) is replaced when
it is taken from the pool: asyncpg marks it closed as soon as the server's end goes, so no
pre-ping round trip is needed (that cost 0.6-1 ms of CPU per turn); one that died without the
client seeing it yet fails its first statement, and the call runs once more on a fresh
connection, so a restarted server costs no failed call. On either database,
one that cannot be reached raises ``StoreUnavailable`` naming the database and the reason, and
the next call tries again.

The tables and their upgrade path are in ``chatbot.store.schema``, the turn's statements in
``chatbot.store.statements``, the SQLite engine and loop connection in
``chatbot.store.sqlite_engine``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    make_url,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.expression import Executable

from chatbot.errors import ConfigError, ConflictError, StoreUnavailable
from chatbot.store import mysql_engine, postgresql_turns, schema
from chatbot.store.base import (
    ConversationStore,
    EncodedEvent,
    StoredConversation,
    check_conversation_id,
    conflict_message,
    decode_event,
    encode_events,
    last_session_start,
)
from chatbot.store.postgresql_engine import create_database, postgresql_engine, schema_exists
from chatbot.store.postgresql_turns import PostgresTurns
from chatbot.store.sqlite_engine import WRITE_OPTION, Busy, LoopConnection, sqlite_engine
from chatbot.store.statements import (
    LOAD_ALL,
    LOAD_SESSION,
    LOAD_SINCE,
    NEW_CONVERSATION,
    NEW_CONVERSATION_MYSQL,
    NEXT_SEQ,
    Conflict,
    Execute,
    append_work,
    execute_on,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

# Driver names as people write them (sync drivers, bare dialects) -> the async driver we use.
ASYNC_DRIVERS: dict[str, str] = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+pg8000": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    **mysql_engine.DRIVERS,
}

# A writer that lost its lock: the events' primary key refused its rows.
_INTEGRITY_ERRORS = (sa_exc.IntegrityError, sqlite3.IntegrityError, asyncpg.UniqueViolationError)
# Errors that mean "the database cannot be reached, went away or refuses us". Every DBAPI error
# but a unique-key violation (a conflict, handled by ``append``) counts: a missing database, a
# refused login or a revoked permission is, to the caller, a store it cannot use right now.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    sqlite3.Error,  # the loop connection speaks to the driver directly
    *postgresql_turns.ERRORS,  # so do a turn's statements on PostgreSQL
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
)

# Worker threads of a SQLite store: reads run side by side (WAL); writes queue anyway.
_SQLITE_THREADS = 4
# The loop connection's writes between two checkpoints of the WAL (a turn writes a few pages;
# SQLite's own default is a checkpoint per 1,000 pages).
_CHECKPOINT_EVERY = 256

T = TypeVar("T")


def async_url(url: str | URL) -> URL:
    """The URL with the async driver (``sqlite:///x`` -> ``sqlite+aiosqlite:///x``)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (sa_exc.ArgumentError, ValueError) as error:  # ValueError: a port not a number
        shown = re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", str(url))  # without its password
        raise ConfigError(f"not a database URL: {shown!r} ({error})") from None
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        known = sorted({d.split("+")[0] for d in ASYNC_DRIVERS})
        raise ConfigError(
            f"database '{parsed.drivername}' is not supported; supported: {', '.join(known)}"
        )
    return parsed.set(drivername=driver)


class SQLStore(ConversationStore):
    """A conversation store on SQLite (a file), PostgreSQL or MySQL / MariaDB.

    ``url`` is any SQLAlchemy URL of those (sync driver names are mapped to async ones).
    ``login_url``, for PostgreSQL and MySQL, is a database to connect to first in order to
    create the store's database when it does not exist (Rasa's ``login_db``).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        login_url: str | URL | None = None,
        connect_timeout: float = 5.0,
        busy_timeout: float = 10.0,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 30.0,
        schema: str | None = None,
    ) -> None:
        self.url = async_url(url)
        self.login_url = async_url(login_url) if login_url is not None else None
        self.dialect = self.url.get_backend_name()
        # PostgreSQL: the schema the tables are in (Rasa's $POSTGRESQL_SCHEMA), the connections'
        # search path; it must exist (``start`` checks). The name is kept as written (quoted).
        self.schema = schema if self.dialect == "postgresql" else None
        if self.schema is not None:
            quoted = '"' + self.schema.replace('"', '""') + '"'
            self.url = self.url.update_query_dict({"search_path": quoted})
        if self.dialect == "sqlite" and self.url.database in (None, "", ":memory:"):
            raise ConfigError(
                "an in-memory SQLite database cannot be shared by the store's connections; "
                "use 'type: in_memory' or give the SQLite database a file path"
            )
        self._connect_timeout = connect_timeout
        pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
        self._engine: AsyncEngine | None = None  # PostgreSQL, MySQL
        self._reads: AsyncEngine | None = None  # the same, for reads (PostgreSQL: autocommit)
        self._sync_engine: Engine | None = None  # SQLite, used from the worker threads
        self._writes: Engine | None = None  # the same, taking the write lock when it begins
        self._threads: ThreadPoolExecutor | None = None
        self._sqlite_writer: asyncio.Lock | None = None  # writes of this process queue on it
        self._loop_connection: LoopConnection | None = None  # SQLite, on the loop's thread
        self._loop_connection_tried = False  # then a None loop connection means: not in WAL mode
        self._checkpoint: asyncio.Future[None] | None = None
        self._postgresql: PostgresTurns | None = None  # a turn's statements on asyncpg
        # The driver's own errors, where one can escape SQLAlchemy's wrapping (MySQL's, when a
        # connection's set-up fails): the store is unavailable, as with a wrapped one.
        self._driver_errors: tuple[type[BaseException], ...] = ()
        # How SQLite's and MySQL's appends make a conversation's row (``append_work``).
        self._new_row: Executable = NEW_CONVERSATION
        if self.dialect == "postgresql":
            self._engine = postgresql_engine(self.url, self._connect_timeout, pool)
            self._reads = self._engine.execution_options(isolation_level="AUTOCOMMIT")
            self._postgresql = PostgresTurns(
                self.url,
                connect_timeout=connect_timeout,
                max_size=pool_size + max_overflow,
                acquire_timeout=pool_timeout,
            )
        elif self.dialect in mysql_engine.DIALECTS:
            self._engine = mysql_engine.mysql_engine(self.url, self._connect_timeout, pool)
            # A read is one statement, whose snapshot ends with the rollback at its return to
            # the pool: one round trip, where switching autocommit on and back costs two.
            self._reads = self._engine
            self._driver_errors = mysql_engine.driver_errors()
            self._new_row = NEW_CONVERSATION_MYSQL
        else:
            self._sync_engine = sqlite_engine(
                self.url.set(drivername="sqlite+pysqlite"), busy_timeout, pool
            )
            self._writes = self._sync_engine.execution_options(**{WRITE_OPTION: True})
            self._threads = ThreadPoolExecutor(_SQLITE_THREADS, thread_name_prefix="sqlite-store")
            self._sqlite_writer = asyncio.Lock()
        self._started = False
        self._start_lock = asyncio.Lock()

    def describe(self) -> str:
        """The database in words, without its password: ``postgresql at host:5432/db``."""
        if self.dialect == "sqlite":
            return f"sqlite at {self.url.database}"
        host = self.url.host or "localhost"
        port = f":{self.url.port}" if self.url.port else ""
        schema = f" (schema {self.schema})" if self.schema is not None else ""
        return f"{self.dialect} at {host}{port}/{self.url.database or ''}{schema}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _INTEGRITY_ERRORS:
            raise
        except _UNAVAILABLE_ERRORS as error:
            raise self._unavailable(error) from None
        except self._driver_errors as error:
            raise self._unavailable(error) from None

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        logger.debug("store error on %s", self.describe(), exc_info=error)
        return StoreUnavailable(f"conversation store unavailable ({self.describe()}): {reason}")

    async def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """``work`` on a connection: in one transaction when ``write``, else as autocommit reads.
        SQLite: the whole of it in a worker thread; PostgreSQL and MySQL: on the async engine."""
        if self._sync_engine is not None:
            assert self._sqlite_writer is not None
            if not write:
                return await self._in_thread(work, write=False)
            async with self._sqlite_writer:  # one writer at a time: queue here, not in SQLite
                return await self._in_thread(work, write=True)
        worked = False

        def tracked(conn: Connection) -> T:
            nonlocal worked
            result = work(conn)
            worked = True
            return result

        try:
            return await self._on_engine(tracked, write=write)
        except sa_exc.DBAPIError as error:
            # A pooled connection that died unseen fails within the work, before the commit:
            # nothing was written, so the work runs again on a fresh connection. A write that
            # failed after its work (at the commit) is not retried: whether it committed is
            # unknown.
            if not error.connection_invalidated or (write and worked):
                raise
            logger.debug("%s: a pooled connection had died; trying again", self.describe())
        return await self._on_engine(work, write=write)

    async def _on_engine(self, work: Callable[[Connection], T], *, write: bool) -> T:
        assert self._engine is not None and self._reads is not None
        if write:
            async with self._engine.begin() as aconn:
                return await aconn.run_sync(work)
        async with self._reads.connect() as aconn:
            return await aconn.run_sync(work)

    async def _in_thread(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """SQLite: ``work`` whole in a worker thread, in a transaction that takes the write lock
        up front when ``write`` (the caller holds ``_sqlite_writer``), else as autocommit reads."""
        assert self._threads is not None and self._writes is not None
        engine = self._writes if write else self._sync_engine
        assert engine is not None

        def run() -> T:
            with engine.begin() if write else engine.connect() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._threads, run)

    async def _turn(self, work: Callable[[Execute], T], *, write: bool = False) -> T:
        """SQLite: one of a turn's statements (``work``) on the loop's own connection where that
        needs no wait, else in a worker thread; MySQL: on the async engine. (PostgreSQL's are
        ``PostgresTurns``.)"""
        if self._sync_engine is None:
            return await self._run(lambda conn: work(execute_on(conn)), write=write)
        assert self._sqlite_writer is not None
        if not write:
            return await self._turn_on_sqlite(work, write=False)
        async with self._sqlite_writer:
            return await self._turn_on_sqlite(work, write=True)

    async def _turn_on_sqlite(self, work: Callable[[Execute], T], *, write: bool) -> T:
        connection = await self._sqlite_loop_connection()
        if connection is not None:
            try:
                result = connection.run(work, write=write)
            except Busy:
                logger.debug("%s is locked: the call waits in a thread", self.describe())
            else:
                if connection.writes >= _CHECKPOINT_EVERY and self._checkpoint is None:
                    connection.writes = 0
                    self._checkpoint = asyncio.ensure_future(self._checkpoint_wal())
                return result
        # Either the lock is taken (the caller holds ``_sqlite_writer`` for a write) or the
        # database has no loop connection: a worker thread, which waits with the busy timeout.
        return await self._in_thread(lambda conn: work(execute_on(conn)), write=write)

    async def _sqlite_loop_connection(self) -> LoopConnection | None:
        """The loop connection, made on first use (in a thread: connecting may wait) when the
        database is in WAL mode; None when it is not (each call then runs in a thread)."""
        if self._loop_connection is not None or self._loop_connection_tried:
            return self._loop_connection
        assert self._sync_engine is not None and self._threads is not None
        engine = self._sync_engine

        def connect() -> LoopConnection | None:
            pooled = engine.raw_connection()
            try:
                db = pooled.driver_connection
                assert isinstance(db, sqlite3.Connection)
                mode = db.execute("PRAGMA journal_mode").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    pooled.close()
                    return None
                return LoopConnection(pooled, db)
            except BaseException:
                pooled.close()
                raise

        connection = await asyncio.get_running_loop().run_in_executor(self._threads, connect)
        if self._loop_connection is None and not self._loop_connection_tried:
            self._loop_connection, self._loop_connection_tried = connection, True
        elif connection is not None:  # two first calls at once: keep the first one's
            connection.close()
        return self._loop_connection

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL's pages into the database file, in a thread (it syncs to disk); passive:
        it waits for no reader or writer."""
        assert self._threads is not None and self._sync_engine is not None
        engine = self._sync_engine

        def checkpoint() -> None:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        try:
            await asyncio.get_running_loop().run_in_executor(self._threads, checkpoint)
        except Exception as error:  # the next one tries again; SQLite keeps the WAL meanwhile
            logger.warning("%s: WAL checkpoint failed: %s", self.describe(), error)
        finally:
            self._checkpoint = None

    async def start(self) -> None:
        """Create the database (with ``login_url``) and the tables, or upgrade them. Runs once;
        every other method calls it, so a store created while its database was down comes up
        as soon as the database does."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            self._check_sqlite_folder()
            with self._errors():
                if self.login_url is not None:
                    await self._create_database()
                if self.schema is not None:
                    await self._check_schema(self.schema)
                applied = await self._run(schema.upgrade, write=True)
            if applied:
                logger.info("conversation store %s: schema %s applied", self.describe(), applied)
            self._started = True

    async def _check_schema(self, name: str) -> None:
        """The schema of $POSTGRESQL_SCHEMA must exist, as Rasa requires: said plainly, before
        PostgreSQL answers the first CREATE TABLE with "no schema has been selected"."""
        found = await self._run(lambda conn: schema_exists(conn, name))
        if not found:
            raise ConfigError(
                f"conversation store {self.describe()}: the schema {name!r} "
                f"($POSTGRESQL_SCHEMA) does not exist in the database; create it (CREATE "
                f"SCHEMA) or unset POSTGRESQL_SCHEMA"
            )

    def _check_sqlite_folder(self) -> None:
        """A SQLite file's folder must exist: said plainly, before the driver answers with
        "unable to open database file"."""
        database = self.url.database
        if self.dialect != "sqlite" or not database or database.startswith("file:"):
            return
        folder = Path(database).expanduser().absolute().parent
        if not folder.is_dir():
            raise StoreUnavailable(
                f"conversation store unavailable ({self.describe()}): "
                f"the folder {folder} does not exist"
            ) from None

    async def _create_database(self) -> None:
        assert self.login_url is not None
        name = self.url.database
        if not name:
            raise ConfigError(f"{self.describe()}: no database name to create")
        if self.dialect in mysql_engine.DIALECTS:
            await mysql_engine.create_database(self.login_url, name, self._connect_timeout)
        else:
            await create_database(self.login_url, name, self._connect_timeout)

    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        check_conversation_id(conversation_id)
        await self.start()
        with self._errors():
            if self._postgresql is not None:
                rows = await self._postgresql.load(conversation_id, all_sessions=all_sessions)
            else:
                query = LOAD_ALL if all_sessions else LOAD_SESSION
                rows = await self._turn(
                    lambda run: run(query, {"b_id": conversation_id}).fetchall()
                )
        if not rows:
            return StoredConversation(conversation_id, [], next_seq=0, first_seq=0)
        return StoredConversation(  # rows: (seq, data)
            conversation_id,
            [decode_event(row[1]) for row in rows],
            next_seq=rows[-1][0] + 1,
            first_seq=rows[0][0],
        )

    async def load_since(self, conversation_id: str, seq: int) -> StoredConversation:
        check_conversation_id(conversation_id)
        await self.start()
        with self._errors():
            if self._postgresql is not None:
                rows = await self._postgresql.load_since(conversation_id, seq)
            else:
                rows = await self._turn(
                    lambda run: run(LOAD_SINCE, {"b_id": conversation_id, "b_seq": seq}).fetchall()
                )
        return StoredConversation(  # rows: (seq, data)
            conversation_id,
            [decode_event(row[1]) for row in rows],
            next_seq=rows[-1][0] + 1 if rows else seq,
            first_seq=seq,
        )

    async def next_seq(self, conversation_id: str) -> int:
        """One primary-key read of the conversation row."""
        check_conversation_id(conversation_id)
        await self.start()
        with self._errors():
            return await self._next_seq(conversation_id)

    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        encoded = encode_events(conversation_id, events, start_seq)
        if not encoded:
            return
        await self.start()
        session_start = last_session_start(encoded)
        now = time.time()
        with self._errors():
            try:
                if self._postgresql is None:
                    write = append_work(
                        conversation_id, encoded, start_seq, now, session_start, self._new_row
                    )
                    await self._append_in_transaction(conversation_id, encoded, write)
                elif not await self._postgresql.append(
                    conversation_id,
                    encoded,
                    start_seq=start_seq,
                    now=now,
                    session_start=session_start,
                ):
                    raise Conflict
            except (Conflict, *_INTEGRITY_ERRORS):
                next_seq = await self._next_seq(conversation_id)
                raise ConflictError(
                    conflict_message(conversation_id, start_seq, next_seq)
                ) from None

    async def _append_in_transaction(
        self,
        conversation_id: str,
        encoded: Sequence[EncodedEvent],
        write: Callable[[Execute], None],
    ) -> None:
        """SQLite's and MySQL's append: ``write`` in one transaction (``Conflict`` when another
        writer moved the conversation on)."""
        try:
            await self._turn(write, write=True)
        except sa_exc.DBAPIError as error:
            if self._sync_engine is not None or not error.connection_invalidated:
                raise
            # MySQL: the connection died at the COMMIT (before it, ``_run`` ran the work again),
            # so whether it committed is unknown: our events there mean it did; else it did not,
            # and the append runs once more (another writer's events there make it a conflict).
            if not await self._stored(conversation_id, encoded):
                await self._turn(write, write=True)

    async def _stored(self, conversation_id: str, encoded: Sequence[EncodedEvent]) -> bool:
        """Whether the store holds exactly ``encoded`` at their seqs."""
        first = encoded[0].seq
        rows = await self._turn(
            lambda run: run(LOAD_SINCE, {"b_id": conversation_id, "b_seq": first}).fetchall()
        )
        stored = [(row[0], row[1]) for row in rows[: len(encoded)]]
        return stored == [(e.seq, e.data) for e in encoded]

    async def _next_seq(self, conversation_id: str) -> int:
        if self._postgresql is not None:
            return await self._postgresql.next_seq(conversation_id)
        row = await self._turn(lambda run: run(NEXT_SEQ, {"b_id": conversation_id}).fetchone())
        return int(row[0]) if row is not None else 0

    async def conversation_ids(self) -> list[str]:
        await self.start()
        query = select(schema.conversations.c.id).order_by(schema.conversations.c.id)
        with self._errors():
            return await self._run(lambda conn: list(conn.scalars(query)))

    async def ping(self) -> bool:
        try:
            await self.start()
            with self._errors():
                await self._run(lambda conn: conn.scalar(select(1)))
        except StoreUnavailable as error:
            logger.warning("%s", error)
            return False
        return True

    async def close(self) -> None:
        if self._postgresql is not None:
            await self._postgresql.close()
        if self._engine is not None:
            await self._engine.dispose()
        if self._sync_engine is not None and self._threads is not None:
            if self._checkpoint is not None:
                await self._checkpoint
            if self._loop_connection is not None:
                self._loop_connection.close()
            self._loop_connection, self._loop_connection_tried = None, False
            threads = self._threads
            await asyncio.get_running_loop().run_in_executor(threads, self._sync_engine.dispose)
            threads.shutdown(wait=False)
            # A closed store can be opened again, as an async engine can after dispose();
            # an executor starts no thread until it is used.
            self._threads = ThreadPoolExecutor(_SQLITE_THREADS, thread_name_prefix="sqlite-store")
