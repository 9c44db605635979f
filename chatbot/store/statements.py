"""The statements of a conversation turn in the SQL store on SQLite and MySQL, built once with bound
parameters, and ``Execute``: the one signature they are run through, on a SQLAlchemy connection
or on the SQLite store's loop connection (``chatbot.store.sqlite_engine``), and ``append_work``,
an append made of them. PostgreSQL's are in ``chatbot.store.postgresql_turns``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.expression import Executable

from chatbot.store import schema
from chatbot.store.base import EncodedEvent

# The statements of every turn, built once with bound parameters: building a SQLAlchemy
# expression costs more CPU than SQLite takes to run it (a next_seq + load + append turn took
# 3.0-3.4 ms of CPU when they were built per call, 1.6 ms since, on a loaded 2-core machine).
_events, _conversations = schema.events, schema.conversations
_EVENTS_OF = select(_events.c.seq, _events.c.data).where(
    _events.c.conversation_id == bindparam("b_id")
)
LOAD_ALL = _EVENTS_OF.order_by(_events.c.seq)
# One statement, so the session start and the events are read from one snapshot.
LOAD_SESSION = _EVENTS_OF.where(
    _events.c.seq
    >= select(_conversations.c.session_start_seq)
    .where(_conversations.c.id == bindparam("b_id"))
    .scalar_subquery()
).order_by(_events.c.seq)
LOAD_SINCE = _EVENTS_OF.where(_events.c.seq >= bindparam("b_seq")).order_by(_events.c.seq)
NEXT_SEQ = select(_conversations.c.next_seq).where(_conversations.c.id == bindparam("b_id"))
_NEW_ROW: dict[str, Any] = {
    "id": bindparam("b_id"),
    "created_at": bindparam("b_now"),
    "updated_at": bindparam("b_now"),
    "next_seq": bindparam("b_end"),
    "session_start_seq": bindparam("b_session"),
}
NEW_CONVERSATION = (
    sqlite.insert(_conversations).values(**_NEW_ROW).on_conflict_do_nothing(index_elements=["id"])
)
# MySQL's: an existing row is a duplicate key, an IntegrityError (``INSERT IGNORE`` would turn
# other errors into warnings too; ``ON DUPLICATE KEY UPDATE`` counts a row it found as changed).
NEW_CONVERSATION_MYSQL = insert(_conversations).values(**_NEW_ROW)
# Compare-and-set on the conversation row: exactly one writer moves it on.
MOVE_ON = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("b_id"))
    .where(_conversations.c.next_seq == bindparam("b_seq"))
    .values(next_seq=bindparam("b_end"), updated_at=bindparam("b_now"))
)
MOVE_ON_NEW_SESSION = MOVE_ON.values(session_start_seq=bindparam("b_session"))
INSERT_EVENTS = insert(_events)


INSERT_EVENT_COLUMNS = ["conversation_id", "seq", "type_name", "timestamp", "data"]

# Runs one statement with its parameters (a list: once per row) and returns a DBAPI-style cursor
# (``fetchone``, ``fetchall``, ``rowcount``): on a SQLAlchemy connection or on the loop's SQLite
# connection, so the statements of a turn are written once for both.
Execute = Callable[[Executable, Any], Any]


def execute_on(conn: Connection) -> Execute:
    """``Execute`` on a SQLAlchemy connection."""
    return lambda statement, params: conn.execute(statement, params)


class Conflict(Exception):
    """Raised inside a write transaction to roll it back; the store makes it a ConflictError."""


def append_work(
    conversation_id: str,
    encoded: Sequence[EncodedEvent],
    start_seq: int,
    now: float,
    session_start: int | None,
    new_conversation: Executable = NEW_CONVERSATION,
) -> Callable[[Execute], None]:
    """SQLite's and MySQL's append as a unit of work: claim the conversation row (``Conflict``
    when another writer moved it on, which rolls the transaction back), then insert the events."""
    rows = [
        {
            "conversation_id": conversation_id,
            "seq": e.seq,
            "type_name": e.type_name[:64],
            "timestamp": e.timestamp,
            "data": e.data,
        }
        for e in encoded
    ]
    params = {
        "b_id": conversation_id,
        "b_seq": start_seq,
        "b_end": start_seq + len(encoded),
        "b_now": now,
        "b_session": session_start or 0,
    }
    claim: Executable
    if start_seq == 0:
        claim = new_conversation  # its row must not exist yet
    else:
        claim = MOVE_ON if session_start is None else MOVE_ON_NEW_SESSION

    def write(run: Execute) -> None:
        if run(claim, params).rowcount != 1:
            raise Conflict
        run(INSERT_EVENTS, rows)

    return write
