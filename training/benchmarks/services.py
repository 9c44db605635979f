"""The services behind the REST benchmark's stores: endpoints.yml blocks for a memory, SQLite or
PostgreSQL conversation store and Redis locks, whether Redis answers, and deleting the scratch
Redis keys after."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import make_url

from training.benchmarks.store import postgres_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_block(url: str, prefix: str) -> dict[str, Any]:
    """A Rasa ``lock_store:`` block for Redis at ``url`` (``redis://[:password@]host:port/db``)."""
    parts = urlsplit(url)
    block: dict[str, Any] = {"type": "redis", "url": parts.hostname or "127.0.0.1"}
    block["port"] = parts.port or 6379
    if parts.path.strip("/"):
        block["db"] = int(parts.path.strip("/"))
    if parts.password:
        block["password"] = parts.password
    if prefix:
        block["key_prefix"] = prefix
    return block


def postgres_block(url: str) -> dict[str, Any]:
    """A Rasa ``tracker_store:`` block for the PostgreSQL database at the SQLAlchemy ``url``."""
    pg = make_url(url)
    block: dict[str, Any] = {
        "type": "sql",
        "dialect": "postgresql",
        "url": pg.host or "127.0.0.1",
        "port": pg.port or 5432,
        "db": pg.database,
    }
    if pg.username:
        block["username"] = pg.username
    if pg.password:
        block["password"] = pg.password
    return block


async def redis_reachable(url: str) -> str | None:
    """None when Redis answers a PING, else why not."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as error:  # any failure means: skip the setups that need it
        return str(error) or type(error).__name__
    finally:
        await client.aclose()
    return None


async def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys under ``prefix`` (the locks of one run)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def tracker_block(setup: str, folder: Path, postgres_server_url: str) -> AsyncIterator[Any]:
    """The ``tracker_store:`` block of a setup; PostgreSQL's is a scratch database on the server
    of ``postgres_server_url``, dropped when the block ends."""
    if setup == "memory":
        yield {"type": "in_memory"}
    elif setup == "sqlite":
        yield {"type": "sql", "dialect": "sqlite", "db": str(folder / "conversations.db")}
    else:
        async with postgres_url(postgres_server_url) as url:
            yield postgres_block(url)


@contextlib.asynccontextmanager
async def endpoints_file(
    setup: str,
    processes: int,
    folder: Path,
    *,
    postgres_server_url: str,
    redis_url: str,
    prefix: str,
) -> AsyncIterator[Path]:
    """endpoints.yml for a setup: its ``tracker_store:``, and Redis locks where two processes
    share the store or the store is PostgreSQL."""
    import yaml

    async with tracker_block(setup, folder, postgres_server_url) as block:
        endpoints: dict[str, Any] = {"tracker_store": block}
        if needs_redis(setup, processes):
            endpoints["lock_store"] = redis_block(redis_url, prefix)
        path = folder / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        yield path


def needs_redis(setup: str, processes: int) -> bool:
    """Redis locks for PostgreSQL, and for SQLite shared by more than one server process."""
    return setup == "postgresql" or (setup == "sqlite" and processes > 1)
