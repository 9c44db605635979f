"""A client's endpoint that answers posted later (``?callback_url=``) arrive at, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.connectors.servers import serve


class Callback:
    """A client's endpoint for answers posted later: each post's headers and body; it answers
    the statuses of ``refusals`` first, then 200."""

    def __init__(self, refusals: tuple[int, ...] = ()) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.refusals = list(refusals)
        self.arrived = asyncio.Event()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/done", self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        if self.refusals:
            return web.Response(status=self.refusals.pop(0))
        self.arrived.set()
        return web.Response(text="ok")

    async def wait(self, seconds: float = 120) -> tuple[dict[str, str], bytes]:
        await asyncio.wait_for(self.arrived.wait(), seconds)
        return self.posts[-1]


@pytest.fixture
async def callback() -> AsyncIterator[tuple[Callback, str]]:
    fake = Callback()
    async with serve(fake.app) as served:
        yield fake, f"{served.url}/done"
