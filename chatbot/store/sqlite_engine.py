"""The SQL store's SQLite side: its engine (WAL mode, transactions that take the write lock up
front) and the loop connection, which runs a turn's statements on the event loop's own thread
and says ``Busy`` instead of waiting for a lock another process holds."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql.expression import ClauseElement, Executable

from chatbot.store.statements import INSERT_EVENT_COLUMNS, INSERT_EVENTS, Execute

T = TypeVar("T")

# A write transaction: the engine's "begin" hook takes the write lock with BEGIN IMMEDIATE.
WRITE_OPTION = "chatbot_write"
# SQLite's result codes for "another connection holds the lock".
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


class Busy(Exception):
    """The loop connection would have to wait for a lock: the call goes to a worker thread."""


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY
    return "locked" in str(error) or "busy" in str(error)


class LoopConnection:
    """One of the store's SQLite connections (from its pool, set up like the others), used on
    the event loop's thread only, with a busy timeout of 0 and without WAL checkpoints of its own.
    ``run`` raises ``Busy``, having changed nothing, where SQLite would have waited."""

    def __init__(self, pooled: PoolProxiedConnection, db: sqlite3.Connection) -> None:
        self._db = db
        pooled.detach()  # its settings below are its own: it never goes back to the pool
        self._pooled = pooled  # SQLAlchemy's proxy: closing it closes the connection
        self._db.execute("PRAGMA busy_timeout=0")
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._sql: dict[int, str] = {}
        self._dialect = sqlite.dialect(paramstyle="named")  # sqlite3 takes :name parameters
        self.writes = 0  # since the last checkpoint

    def _execute(self, statement: Executable, params: Any) -> sqlite3.Cursor:
        sql = self._sql.get(id(statement))
        if sql is None:
            keys = INSERT_EVENT_COLUMNS if statement is INSERT_EVENTS else None
            clause = cast(ClauseElement, statement)
            sql = self._sql[id(statement)] = str(
                clause.compile(dialect=self._dialect, column_keys=keys)
            )
        if isinstance(params, list):
            return self._db.executemany(sql, params)
        return self._db.execute(sql, params)

    def run(self, work: Callable[[Execute], T], *, write: bool) -> T:
        try:
            if not write:
                return work(self._execute)
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if _is_busy(error):
                raise Busy from None
            raise
        try:
            result = work(self._execute)
            self._db.execute("COMMIT")
        except BaseException as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
                raise Busy from None
            raise
        self.writes += 1
        return result

    def close(self) -> None:
        self._pooled.close()


def _enter_wal_mode(cursor: Any, busy_timeout: float) -> None:
    """Switch a SQLite database to WAL mode, once for the file's lifetime.

    On a fresh database the switch needs an exclusive lock. A process holding a write
    transaction (creating the tables) waits at commit for our shared lock to go, while we wait
    for its write lock: the busy handler would let both wait the whole busy timeout. So the
    switch is tried without waiting and retried after a pause, which lets the writer finish.
    """
    cursor.execute("PRAGMA journal_mode")
    row = cursor.fetchone()
    if row is not None and str(row[0]).lower() == "wal":
        return
    cursor.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    try:
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except Exception as error:  # sqlite3.OperationalError, wrapped by the driver
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)  # connecting is rare (pooled); this runs only on a fresh file
            pause = min(pause * 2, 0.1)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")


def sqlite_engine(url: URL, busy_timeout: float, pool: Mapping[str, Any]) -> Engine:
    """A sync engine on a SQLite file: WAL, our own transactions, the write lock taken up front."""
    engine = create_engine(
        url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **pool
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Transactions are begun by the "begin" hook below, not by the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _enter_wal_mode(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writes take the database's write lock up front; reads (single statements) run
        # without a transaction.
        if conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
