"""MySQL and MariaDB for the SQL store and the SQL event broker (Rasa's ``dialect: mysql``, with
any driver name Rasa users write: ``mysql+pymysql``, ``mysql+mysqldb``, ``mariadb``, ...), on the
async driver asyncmy, imported only where such a database is configured (aiomysql, the other
one, cannot send bytes beside PyMySQL 1.2).

What differs from SQLite and PostgreSQL, and is taken care of here or in ``chatbot.store.schema``:

- Connections speak utf8mb4 (every Unicode character, emoji included; MySQL's ``utf8`` holds
  three bytes a character at most), and the tables are created in it.
- Conversation ids are stored as their UTF-8 bytes (``VARBINARY``), not as text: MySQL compares
  text in a collation, where ``Alice`` equals ``alice`` (``_ci``) and, in every ``PAD SPACE``
  collation (MariaDB's ``utf8mb4_bin`` among them), ``bob`` equals ``bob `` — two users'
  conversations would be one row. Bytes compare exactly.
- An event's JSON is ``LONGTEXT`` (``TEXT`` stops at 64 KiB) and times are ``DOUBLE`` (MySQL's
  ``FLOAT`` is single precision: a Unix time in seconds would lose minutes).
- DDL commits at once in MySQL, so concurrent start-ups are kept apart with ``GET_LOCK`` rather
  than by a transaction (``schema.upgrade``).
- A pooled connection the server closed (a restart, its ``wait_timeout``) fails its first
  statement, before anything was written: the call runs again on a fresh connection
  (``SQLStore._run``), as on PostgreSQL. No ping when a connection leaves the pool: it cost a
  round trip a call (a fifth of the turns a second). Connections are recycled after an hour.
  A connection that dies at an append's COMMIT leaves unknown whether it committed: the store
  looks for its events (``SQLStore.append``), as PostgreSQL's appends do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, VARBINARY, PrimaryKeyConstraint, String, Text, TypeDecorator
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.compiler import DDLCompiler

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

DIALECTS = ("mysql", "mariadb")
CHARSET = "utf8mb4"
# Seconds a pooled connection is kept before it is replaced.
RECYCLE_SECONDS = 3600
# MySQL picks LONGTEXT for a TEXT this long (up to 4 GiB; TEXT holds 64 KiB). Generic types and
# no ``mysql_*`` table options (SQLAlchemy imports its MySQL dialect to check those, 15 ms at
# every start), so that nothing of MySQL is imported where no MySQL is used.
LONG_TEXT = Text(2**32 - 1)
# Marks our tables (``Table(..., info=OURS)``): on MySQL they are created in utf8mb4 and InnoDB,
# and their primary key without its name. Other tables of the process are left alone.
OURS: dict[str, Any] = {"chatbot": True}

DRIVERS: dict[str, str] = {
    name: f"{dialect}+asyncmy"
    for dialect in DIALECTS
    for name in (
        dialect,
        f"{dialect}+pymysql",
        f"{dialect}+mysqldb",
        f"{dialect}+mysqlconnector",
        f"{dialect}+mariadbconnector",
        f"{dialect}+asyncmy",
        f"{dialect}+aiomysql",
    )
}


class Utf8Bytes(TypeDecorator[str]):
    """A string kept as its UTF-8 bytes in a ``VARBINARY`` of ``4 * length`` bytes: compared
    byte for byte (no collation, no padding), read back as the same string."""

    impl = VARBINARY
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(4 * length)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else value.encode("utf-8")

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else bytes(value).decode("utf-8")


@compiles(PrimaryKeyConstraint, "mysql")
@compiles(PrimaryKeyConstraint, "mariadb")
def _unnamed_primary_key(constraint: PrimaryKeyConstraint, compiler: DDLCompiler, **kw: Any) -> str:
    """Our primary keys without their names: MySQL ignores one, and says so in a warning."""
    text = compiler.visit_primary_key_constraint(constraint, **kw)
    table = getattr(constraint, "table", None)
    if table is not None and table.info.get("chatbot") and text.startswith("CONSTRAINT "):
        text = text.split(" ", 2)[2]
    return text


@compiles(CreateTable, "mysql")
@compiles(CreateTable, "mariadb")
def _utf8mb4_table(create: CreateTable, compiler: DDLCompiler, **kw: Any) -> str:
    """Our tables in utf8mb4 (every character, whatever the database's default) and InnoDB."""
    text = compiler.visit_create_table(create, **kw)
    if create.element.info.get("chatbot"):
        text = f"{text.rstrip()} ENGINE=InnoDB DEFAULT CHARSET={CHARSET}\n\n"
    return text


def exact_string(length: int) -> String:
    """A ``String(length)`` that MySQL and MariaDB keep as bytes (``Utf8Bytes``): for keys."""
    return String(length).with_variant(Utf8Bytes(length), *DIALECTS)


def with_charset(url: URL) -> URL:
    """The URL asking for utf8mb4, unless its query names a charset itself."""
    if "charset" in url.query:
        return url
    return url.update_query_dict({"charset": CHARSET})


def mysql_engine(url: URL, connect_timeout: float, pool: Mapping[str, Any]) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine  # not at startup

    return create_async_engine(
        with_charset(url),
        connect_args={"connect_timeout": connect_timeout},
        pool_recycle=RECYCLE_SECONDS,
        **pool,
    )


def driver_errors() -> tuple[type[BaseException], ...]:
    """The driver's base error class."""
    import asyncmy

    return (asyncmy.errors.MySQLError,)


async def create_database(login_url: URL, name: str, connect_timeout: float) -> None:
    """Create database ``name`` through ``login_url`` where it does not exist yet (Rasa's
    ``login_db``), in utf8mb4."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        with_charset(login_url),
        connect_args={"connect_timeout": connect_timeout},
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            await conn.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET {CHARSET}"
            )
    finally:
        await engine.dispose()
