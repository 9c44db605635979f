"""The REST benchmark's server side: a store and lock store that time their calls, and ``serve``,
``chatbot.server``'s application with those stores plus ``GET /bench/timings`` and
``POST /bench/reset`` (run in a process of its own by ``rest_store serve``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.store import ConversationStore, LockStore, StoredConversation
from chatbot.store.locks import Ticket

PROJECT = Path(__file__).resolve().parents[2] / "domains" / "moodbot"


@dataclass
class Timers:
    """Seconds spent awaiting each store call, and how many calls, since the last reset."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


class TimedStore(ConversationStore):
    """A conversation store that times its ``next_seq``, ``load`` and ``append`` calls."""

    def __init__(self, inner: ConversationStore, timers: Timers) -> None:
        self.inner = inner
        self.timers = timers

    async def start(self) -> None:
        await self.inner.start()

    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        started = time.perf_counter()
        try:
            return await self.inner.load(conversation_id, all_sessions=all_sessions)
        finally:
            self.timers.add("store_load", time.perf_counter() - started)

    async def next_seq(self, conversation_id: str) -> int:
        # Forwarded, not the base class's default (a whole load): the processor asks it every
        # turn, to check its cached conversation against the store.
        started = time.perf_counter()
        try:
            return await self.inner.next_seq(conversation_id)
        finally:
            self.timers.add("store_next_seq", time.perf_counter() - started)

    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        started = time.perf_counter()
        try:
            await self.inner.append(conversation_id, events, start_seq=start_seq)
        finally:
            self.timers.add("store_append", time.perf_counter() - started)

    async def conversation_ids(self) -> list[str]:
        return await self.inner.conversation_ids()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


class TimedLocks(LockStore):
    """A lock store that times ``acquire`` (waiting included) and ``release``."""

    def __init__(self, inner: LockStore, timers: Timers) -> None:
        self.inner = inner
        self.timers = timers

    async def acquire(self, conversation_id: str) -> Ticket:
        started = time.perf_counter()
        try:
            return await self.inner.acquire(conversation_id)
        finally:
            self.timers.add("lock_acquire", time.perf_counter() - started)

    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        started = time.perf_counter()
        try:
            await self.inner.release(conversation_id, ticket)
        finally:
            self.timers.add("lock_release", time.perf_counter() - started)

    async def queue_length(self, conversation_id: str) -> int:
        return await self.inner.queue_length(conversation_id)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def serve(model: Path, endpoints_path: Path, port: int) -> None:
    """One server: the REST channel of ``create_app`` with timed stores, plus
    ``GET /bench/timings`` and ``POST /bench/reset``."""
    from aiohttp import web

    from chatbot.agent import Agent, TrainedModel
    from chatbot.server.app import create_app, read_endpoints
    from chatbot.server.settings import ServerSettings
    from chatbot.store.factory import create_lock_store, create_store

    timers = Timers()
    endpoints = read_endpoints(PROJECT, endpoints_path)
    store = TimedStore(create_store(endpoints.tracker_store, default_sqlite_path=None), timers)
    locks = TimedLocks(create_lock_store(endpoints.lock_store), timers)
    agent = Agent(TrainedModel.from_file(model), store=store, locks=locks)
    settings = ServerSettings(project_dir=PROJECT, host="127.0.0.1", port=port, rate_limit=None)
    app = create_app(agent, settings)

    async def timings(request: web.Request) -> web.Response:
        return web.json_response({"seconds": timers.seconds, "calls": timers.calls})

    async def reset(request: web.Request) -> web.Response:
        timers.reset()
        return web.json_response({})

    app.router.add_get("/bench/timings", timings)
    app.router.add_post("/bench/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
