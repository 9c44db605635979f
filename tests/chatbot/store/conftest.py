"""Stores and lock stores for the tests of chatbot.store, one per backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chatbot.store import ConversationStore, InMemoryLockStore, InMemoryStore, LockStore, SQLStore
from chatbot.store.redis_lock import RedisLockStore
from chatbot.store.redis_store import RedisStore
from tests.services import mysql_url, postgres_url, redis_key_prefix, redis_url  # noqa: F401

STORE_BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.services),
    pytest.param("mysql", marks=pytest.mark.services),
    pytest.param("redis", marks=pytest.mark.services),
]
LOCK_BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.services)]


@dataclass
class StoreBackend:
    kind: str
    url: str | None  # None: in memory
    key_prefix: str = ""  # Redis: this test's own keys

    @property
    def persistent(self) -> bool:
        return self.url is not None

    def new_store(self) -> ConversationStore:
        if self.url is None:
            return InMemoryStore()
        if self.kind == "redis":
            return RedisStore(self.url, key_prefix=self.key_prefix)
        return SQLStore(self.url)


@pytest.fixture(params=STORE_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    if request.param == "memory":
        return StoreBackend("memory", None)
    if request.param == "sqlite":
        return StoreBackend("sqlite", f"sqlite:///{tmp_path / 'conversations.db'}")
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return StoreBackend("redis", url, request.getfixturevalue("redis_key_prefix"))
    if request.param == "mysql":
        return StoreBackend("mysql", request.getfixturevalue("mysql_url"))
    return StoreBackend("postgresql", request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(backend: StoreBackend) -> AsyncIterator[ConversationStore]:
    async with backend.new_store() as opened:
        yield opened


@dataclass
class LockBackend:
    """Makes lock stores of one kind; two Redis lock stores share nothing but the server, as two
    processes would. ``make`` for in-memory locks returns the same store every time (the
    lifetimes of the first call hold)."""

    kind: str
    redis_url: str | None = None
    key_prefix: str = ""
    opened: list[LockStore] = field(default_factory=list)

    def make(self, *, lock_lifetime: float = 30.0, wait_timeout: float = 30.0) -> LockStore:
        if self.kind == "memory":
            if not self.opened:
                self.opened.append(
                    InMemoryLockStore(lock_lifetime=lock_lifetime, wait_timeout=wait_timeout)
                )
            return self.opened[0]
        assert self.redis_url is not None
        store = RedisLockStore(
            self.redis_url,
            key_prefix=self.key_prefix,
            lock_lifetime=lock_lifetime,
            wait_timeout=wait_timeout,
        )
        self.opened.append(store)
        return store


@pytest.fixture(params=LOCK_BACKENDS)
def lock_backend(request: pytest.FixtureRequest) -> LockBackend:
    if request.param == "memory":
        return LockBackend("memory")
    return LockBackend(
        "redis",
        redis_url=request.getfixturevalue("redis_url"),
        key_prefix=request.getfixturevalue("redis_key_prefix"),
    )


@pytest.fixture
async def locks(lock_backend: LockBackend) -> AsyncIterator[LockBackend]:
    yield lock_backend
    for opened in lock_backend.opened:
        await opened.close()


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not await condition():
        if loop.time() > give_up:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)
