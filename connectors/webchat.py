"""The root page of ``chatbot run``: the chat page for browsers, Rasa's greeting text otherwise."""

from __future__ import annotations

from aiohttp import web

from chatbot.agent import __version__


def register_chat_page(app: web.Application) -> None:
    async def root(request: web.Request) -> web.Response:
        return web.Response(text=f"Hello from chatbot {__version__}")

    app.router.add_get("/", root)
