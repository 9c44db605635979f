"""Rasa's SQL event broker: every stored event as a row of the table ``events`` in SQLite,
PostgreSQL or MySQL / MariaDB, so that analytics queries written for Rasa keep working.

The table is Rasa's: ``id`` (an integer primary key that numbers the rows in the order they were
published), ``sender_id`` (the conversation, up to 255 characters) and ``data`` (the event's Rasa
JSON with ``sender_id`` added, as text). It is created when missing; an existing ``events`` table
without those columns (the conversation store's own ``events`` table, say, when the broker points
at the store's database) is an error in the log, each time the broker retries.

Rows are written by the broker's background task (``EventBroker``) through SQLAlchemy's async
engine, up to ``SQLEventBroker.batch_size`` per transaction. A database that is away is retried
with backoff; values the database refuses for good (a NUL character in a PostgreSQL string, say)
are dropped, counted and logged, one event at a time, so they cannot stop the events after them.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import (
    URL,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatbot.store import mysql_engine
from chatbot.store.base import MAX_CONVERSATION_ID_LENGTH
from chatbot.store.broker import EventBroker, Pending
from chatbot.store.sql import async_url

logger = logging.getLogger(__name__)

metadata = MetaData()

# Rasa's SQLEventBroker table, name and columns as Rasa creates them.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(MAX_CONVERSATION_ID_LENGTH)),
    Column("data", Text().with_variant(mysql_engine.LONG_TEXT, *mysql_engine.DIALECTS)),
    info=mysql_engine.OURS,
)

# SQLSTATE classes of errors about the values themselves: 22 data exception, 23 integrity
# constraint violation. Sending the same values again cannot succeed.
_REFUSED_STATES = ("22", "23")


class WrongTable(Exception):
    """The database has a table ``events`` that is not an event broker's."""


class SQLEventBroker(EventBroker):
    """Writes events to the table ``events`` of the database at ``url`` (any SQLAlchemy URL of
    SQLite, PostgreSQL or MySQL; sync driver names are mapped to the async ones)."""

    batch_size = 100

    def __init__(
        self,
        url: str | URL,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        **buffering: Any,
    ) -> None:
        super().__init__(**buffering)
        self.url = async_url(url)  # a ConfigError for a database we do not support
        self.dialect = self.url.get_backend_name()
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._engine: AsyncEngine | None = None
        self._table_ready = False

    def describe(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite at {self.url.database}"
        port = f":{self.url.port}" if self.url.port else ""
        return f"{self.dialect} at {self.url.host or 'localhost'}{port}/{self.url.database or ''}"

    def _connect(self) -> AsyncEngine:
        if self._engine is None:
            url = self.url
            if self.dialect == "sqlite":  # aiosqlite: the busy timeout
                args: dict[str, Any] = {"timeout": self.statement_timeout}
            elif self.dialect in mysql_engine.DIALECTS:  # asyncmy: no statement timeout
                args = {"connect_timeout": self.connect_timeout}
                url = mysql_engine.with_charset(url)
            else:  # asyncpg
                args = {"timeout": self.connect_timeout, "command_timeout": self.statement_timeout}
            # One connection: one task writes. Checked before use, since a server restart
            # would otherwise cost a failed delivery and a backoff.
            self._engine = create_async_engine(
                url, connect_args=args, pool_size=1, max_overflow=0, pool_pre_ping=True
            )
        return self._engine

    async def _deliver(self, batch: list[Pending]) -> None:
        rows = [{"sender_id": sender_id, "data": data} for sender_id, data in batch]
        async with self._connect().connect() as conn:
            if not self._table_ready:
                async with conn.begin():
                    await conn.run_sync(_create_table)
                self._table_ready = True
            try:
                async with conn.begin():
                    await conn.execute(insert(events), rows)
            except Exception as error:
                if not _refused(error):
                    raise
            else:
                self._settle(len(rows))
                return
            # The database refused a value: one event at a time, so only the culprits go.
            for row in rows:
                try:
                    async with conn.begin():
                        await conn.execute(insert(events), row)
                except Exception as error:
                    if not _refused(error):
                        raise
                    logger.error(
                        "event broker %s: the database refused an event of conversation %r "
                        "(%s); it is dropped",
                        self.describe(),
                        row["sender_id"],
                        _refusal(error),
                    )
                    self._settle(1, rejected=True)
                else:
                    self._settle(1)

    def _reason(self, error: BaseException) -> str:
        # A DBAPI error's text holds the statement and its parameters (events): the driver's
        # own message only.
        return super()._reason(_driver_error(error))

    async def _disconnect(self) -> None:
        engine, self._engine = self._engine, None
        self._table_ready = False  # checked again on the next connection
        if engine is not None:
            await engine.dispose()


def _create_table(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    found = {column["name"] for column in inspect(conn).get_columns(events.name)}
    missing = [column.name for column in events.columns if column.name not in found]
    if missing:
        raise WrongTable(
            f"the table 'events' has no column {', '.join(missing)}: it is not an event "
            "broker's table (the conversation store's, in the same database?); give the "
            "broker a database of its own"
        )


def _refused(error: BaseException) -> bool:
    """Whether the database refused the values themselves (retrying cannot help), rather than
    being away."""
    if isinstance(error, (sa_exc.DataError, sa_exc.IntegrityError)):
        return True
    cause: BaseException | None = error
    for _ in range(8):  # down the chain of causes: SQLAlchemy's, its adapter's, the driver's
        if cause is None:
            break
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_REFUSED_STATES):
            return True
        if isinstance(cause, ValueError):
            return True  # a value the driver cannot send (asyncpg's DataError, UnicodeError)
        orig = cause.orig if isinstance(cause, sa_exc.DBAPIError) else None
        cause = orig if orig is not None and orig is not cause else cause.__cause__
    return False


def _refusal(error: BaseException) -> str:
    """The database's reason in a few words, without the value it refused."""
    cause = _driver_error(error)
    line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return line.split(": ", 1)[0]


def _driver_error(error: BaseException) -> BaseException:
    """The driver's error inside SQLAlchemy's wrapper, whose text adds the statement and its
    parameters."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        return error.orig
    return error
