"""The Redis client the Redis stores share (locks, conversations): its timeouts and retries, a
blocking connection pool, how it is named in messages (never with its password), and its errors
as ``StoreUnavailable``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from chatbot.errors import StoreUnavailable

logger = logging.getLogger(__name__)


def redis_client(url: str, client_options: Mapping[str, Any] | None = None) -> aioredis.Redis:
    """A client of the Redis at ``url``; ``client_options`` go to redis-py (password, ssl,
    timeouts, ...)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 5.0,
        "socket_timeout": 10.0,
        # A few quick retries ride out a blip; a Redis that is down is reported in < 1 s.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        "health_check_interval": 30,
    }
    options.update(client_options or {})
    # A blocking pool: past its connections, callers wait for one instead of failing
    # (redis-py's default pool raises "Too many connections" at 100 calls in flight).
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=100, timeout=10, **options)
    return aioredis.Redis.from_pool(pool)


def describe(client: aioredis.Redis) -> str:
    """``redis at host:port/db`` (or its socket path): where, without credentials."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"redis at {kwargs['path']}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis at {host}:{port}/{kwargs.get('db', 0)}"


async def call(client: aioredis.Redis, awaitable: Awaitable[Any], what: str) -> Any:
    """``awaitable``'s result; a Redis that cannot be reached is ``StoreUnavailable`` naming
    ``what`` ("lock store", "conversation store") and where."""
    try:
        return await awaitable
    except (RedisError, OSError) as error:
        logger.debug("redis error on %s", describe(client), exc_info=error)
        reason = str(error).strip() or type(error).__name__
        raise StoreUnavailable(f"{what} unavailable ({describe(client)}): {reason}") from None
