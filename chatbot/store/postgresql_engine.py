"""PostgreSQL for the SQL store: its engine on asyncpg, and what its start checks or makes (the
database with ``login_db``, the schema of ``$POSTGRESQL_SCHEMA``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import URL, Column, Connection, MetaData, String, Table, event, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("chatbot.store.sql")  # the store's own messages, under its name

# PostgreSQL's catalog of databases, for creating the store's database (``login_url``).
_pg_database = Table("pg_database", MetaData(), Column("datname", String), schema="pg_catalog")
_SCHEMA_EXISTS = text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")


def asyncpg_engine(url: URL, connect_timeout: float, **options: Any) -> AsyncEngine:
    """An async engine whose connections asyncpg makes from the URL as a DSN, its query
    (``sslmode``, ``application_name``, ``search_path``, ... as Rasa users write them) read as
    libpq reads it."""
    from sqlalchemy.ext.asyncio import create_async_engine  # PostgreSQL only: not at startup

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect() -> Any:
        return await asyncpg.connect(dsn, timeout=connect_timeout)

    return create_async_engine(url.set(query={}), async_creator=connect, **options)


def postgresql_engine(url: URL, connect_timeout: float, pool: Mapping[str, Any]) -> AsyncEngine:
    """An async engine (asyncpg) whose pool replaces connections the server has closed."""
    engine = asyncpg_engine(url, connect_timeout, **pool)

    @event.listens_for(engine.sync_engine, "checkout")
    def _replace_closed(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: Any
    ) -> None:
        # asyncpg sees the server's end go while the connection sits in the pool; the pool
        # then connects anew (a DisconnectionError here is its signal to).
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise sa_exc.DisconnectionError("the server closed this pooled connection")

    return engine


async def create_database(login_url: URL, name: str, connect_timeout: float) -> None:
    """Create database ``name`` through ``login_url``'s database where it does not exist yet
    (Rasa's ``login_db``); another process creating it meanwhile is no error."""
    engine = asyncpg_engine(
        login_url, connect_timeout, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                select(1).select_from(_pg_database).where(_pg_database.c.datname == name)
            )
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(name)
                await conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
                logger.info("created database %s", name)
    except sa_exc.ProgrammingError as error:
        if "already exists" not in str(error.orig):  # another process created it just now
            raise
    finally:
        await engine.dispose()


def schema_exists(conn: Connection, name: str) -> bool:
    """Whether the database has a schema of that exact name."""
    return bool(conn.execute(_SCHEMA_EXISTS, {"name": name}).scalar())
