"""The SQL schema of the conversation store, and how a database is brought up to date.

Tables (SQLite, PostgreSQL and MySQL alike; MySQL's column types in ``chatbot.store.mysql_engine``):

``conversations``
    ``id`` (primary key), ``created_at`` / ``updated_at`` (Unix seconds), ``next_seq`` (the seq
    the next event gets), ``session_start_seq`` (the seq of the last ``action_session_start``,
    0 when there is none).
``events``
    one row per event: ``conversation_id``, ``seq``, ``type_name`` (the event's ``event`` key),
    ``timestamp`` (its ``timestamp``, when it has one) and ``data``, the Rasa event JSON as text,
    verbatim. The primary key ``(conversation_id, seq)`` is the UNIQUE constraint that makes a
    lost lock fail loudly, and the index every query uses: loading the last session is a range
    scan ``conversation_id = ? AND seq >= conversations.session_start_seq``, however long the
    conversation.
``schema_version``
    one row per schema version this database has reached (``version``, ``applied_at``,
    ``description``); the database is at the highest.

Upgrade path (no Alembic; the schema is small): ``SCHEMA_VERSION`` is the version the tables below
describe, and ``MIGRATIONS`` lists, in order, the steps that bring a database from version
``n - 1`` to ``n``. At start-up, ``upgrade`` (under a lock: PostgreSQL's advisory lock, SQLite's
``BEGIN IMMEDIATE``, MySQL's ``GET_LOCK``, so that two processes starting together do not race)

- creates the current tables in an empty database and stamps it ``SCHEMA_VERSION``;
- applies the migrations after the database's version, each recorded in ``schema_version``, all
  in the same transaction (SQLite and PostgreSQL have transactional DDL; MySQL commits each
  statement of DDL at once, so a migration there must leave a database that works if the next
  one fails);
- refuses a database whose version is newer than ``SCHEMA_VERSION`` (a newer chatbot wrote it).

To change the schema: edit the tables here, bump ``SCHEMA_VERSION`` and append a ``Migration``
whose function turns a database of the previous version into the new one (``ALTER TABLE``, data
copies), then add a test that upgrades a database created at the previous version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
)

from chatbot.errors import ConfigError, StoreUnavailable
from chatbot.store.base import MAX_CONVERSATION_ID_LENGTH
from chatbot.store.mysql_engine import DIALECTS as MYSQL_DIALECTS
from chatbot.store.mysql_engine import LONG_TEXT, OURS, exact_string

SCHEMA_VERSION = 1

metadata = MetaData()

# MySQL's FLOAT is single precision, its TEXT at most 64 KiB: DOUBLE and LONGTEXT there (the
# other databases' types are as they always were).
_Double = Float().with_variant(Double(), *MYSQL_DIALECTS)
_LongText = Text().with_variant(LONG_TEXT, *MYSQL_DIALECTS)

conversations = Table(
    "conversations",
    metadata,
    Column("id", exact_string(MAX_CONVERSATION_ID_LENGTH), primary_key=True),
    Column("created_at", _Double, nullable=False),
    Column("updated_at", _Double, nullable=False),
    Column("next_seq", Integer, nullable=False),
    Column("session_start_seq", Integer, nullable=False, server_default=text("0")),
    info=OURS,
)

events = Table(
    "events",
    metadata,
    Column(
        "conversation_id",
        exact_string(MAX_CONVERSATION_ID_LENGTH),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("type_name", String(64), nullable=False),
    Column("timestamp", _Double, nullable=True),
    Column("data", _LongText, nullable=False),
    PrimaryKeyConstraint("conversation_id", "seq", name="events_conversation_seq_key"),
    info=OURS,
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", _Double, nullable=False),
    Column("description", Text, nullable=False),
    info=OURS,
)


@dataclass(frozen=True)
class Migration:
    """Brings a database from ``version - 1`` to ``version``; runs inside the upgrade's
    transaction, on a synchronous connection (``AsyncConnection.run_sync``)."""

    version: int
    description: str
    apply: Callable[[Connection], None]


# Version 1 is the first schema: there is nothing to migrate from yet.
MIGRATIONS: tuple[Migration, ...] = ()

# Any constant will do; it only has to be the same in every process of this program.
_PG_ADVISORY_LOCK_KEY = 0x63686174626F74  # "chatbot"
# MySQL's named lock, per server: the database's name is added.
_MYSQL_LOCK_NAME = "chatbot-schema-"
_MYSQL_LOCK_SECONDS = 60


def database_version(conn: Connection) -> int | None:
    """The database's schema version, or None for a database without our tables."""
    if not inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(select(func.max(schema_version.c.version))).scalar()


def upgrade(
    conn: Connection,
    *,
    target: int = SCHEMA_VERSION,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring the database on ``conn`` (inside a transaction) to ``target``; the versions applied.

    The caller holds the transaction; on PostgreSQL this takes a transaction-scoped advisory
    lock first, on MySQL a named lock of the connection, so concurrent start-ups apply each step
    once.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_ADVISORY_LOCK_KEY)))
    if conn.dialect.name not in MYSQL_DIALECTS:
        return _upgrade(conn, target, migrations)
    name = _MYSQL_LOCK_NAME + str(conn.execute(select(func.database())).scalar())
    if conn.execute(select(func.get_lock(name, _MYSQL_LOCK_SECONDS))).scalar() != 1:
        raise StoreUnavailable(
            f"the conversation database's tables are being set up by another process (MySQL "
            f"lock {name!r}) for more than {_MYSQL_LOCK_SECONDS} s"
        )
    try:
        applied = _upgrade(conn, target, migrations)
        # The lock is the connection's, the transaction's end the caller's: what the upgrade
        # wrote (the version rows; the DDL committed at once) is committed before the lock
        # goes. Else the process that takes the lock next sees the tables without their
        # version, and refuses them as another program's.
        conn.execute(text("COMMIT"))
        return applied
    finally:
        conn.execute(select(func.release_lock(name)))


def _upgrade(conn: Connection, target: int, migrations: Sequence[Migration]) -> list[int]:
    current = database_version(conn)
    if current is None:
        taken = [name for name in metadata.tables if inspect(conn).has_table(name)]
        if taken:  # another program's tables of our names: Rasa's tracker store or event broker
            raise ConfigError(
                f"the conversation database already has a table '{taken[0]}' that is not this "
                "chatbot's (Rasa's tracker store or event broker keeps one so named): point the "
                "conversation store at a database of its own; nothing was changed in this one "
                "(`chatbot import` moves conversations exported as JSON Lines)"
            )
        metadata.create_all(conn)
        conn.execute(
            schema_version.insert().values(
                version=target, applied_at=time.time(), description="created"
            )
        )
        return [target]
    if current > target:
        raise ConfigError(
            f"the conversation database is at schema version {current}, newer than this "
            f"chatbot's {target}; upgrade chatbot or point it at another database"
        )
    applied = []
    for migration in migrations:
        if current < migration.version <= target:
            migration.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=migration.version,
                    applied_at=time.time(),
                    description=migration.description,
                )
            )
            applied.append(migration.version)
    reached = applied[-1] if applied else current
    if reached != target:
        raise ConfigError(
            f"no migration brings the conversation database from schema version {reached} to "
            f"{target} (a bug: MIGRATIONS misses a step)"
        )
    return applied
