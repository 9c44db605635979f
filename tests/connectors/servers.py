"""The server's app with a channel, served on real loopback ports; waiting for what fakes record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.server.app import AGENT, create_app
from chatbot.server.settings import ServerSettings
from connectors.base import InputChannel

WAIT = 10.0  # seconds any one wait in these tests may take before it fails


@dataclass(frozen=True)
class Served:
    app: web.Application
    url: str  # http://127.0.0.1:<port>


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[Served]:
    """Run ``app`` on 127.0.0.1 on a free port until the block ends (then shut it down)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


# The ``serve_channel`` fixture: ``serve_channel(channel, settings=None)``.
ServeChannel = Callable[..., AbstractAsyncContextManager["Served"]]


def app_with(
    agent: Agent, channel: InputChannel, settings: ServerSettings | None = None
) -> web.Application:
    """The server's application (the REST channel, as without a credentials.yml) with
    ``channel`` mounted as ``chatbot run`` mounts it; the test keeps hold of the channel."""
    app = create_app(agent, settings)
    channel.register(app, lambda: app[AGENT])
    return app


class Recorder:
    """A list of what a fake server received, and a way to wait until it holds enough."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Condition()

    async def add(self, item: Any) -> None:
        async with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], timeout: float = WAIT
    ) -> list[Any]:
        """The items once ``predicate(items)`` holds; fails the test after ``timeout``."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.items)), timeout)
        return list(self.items)

    async def wait_count(self, count: int, timeout: float = WAIT) -> list[Any]:
        return await self.wait_for(lambda items: len(items) >= count, timeout)


class Receiver:
    """The client's endpoint that the bot's messages are posted to."""

    def __init__(self) -> None:
        self.messages = Recorder()
        # Each post's headers and query, in the order the messages came.
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.app = web.Application()
        self.app.router.add_post("/bot", self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), dict(request.query)))
        await self.messages.add(await request.json())
        return web.Response(text="ok")
