"""Rasa's REST channel: ``POST /webhooks/rest/webhook`` with ``{"sender", "message",
"metadata"}`` answers with the list of bot messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from connectors.base import InputChannel

MAX_MESSAGE_CHARS = 10_000


async def read_user_message(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    """(sender, text, metadata) from a REST channel body, or a 400 naming what is wrong."""
    try:
        body = await request.json()
    except ValueError:
        raise json_error(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise json_error(400, "the body must be a JSON object")
    sender = body.get("sender", "default")
    text = body.get("message")
    metadata = body.get("metadata") or {}
    if not isinstance(sender, str) or not sender or len(sender) > 255:
        raise json_error(400, "'sender' must be a non-empty string of at most 255 characters")
    if not isinstance(text, str):
        raise json_error(400, "'message' must be a string")
    if len(text) > MAX_MESSAGE_CHARS:
        raise json_error(413, f"'message' is longer than {MAX_MESSAGE_CHARS} characters")
    if not isinstance(metadata, dict):
        raise json_error(400, "'metadata' must be an object")
    return sender, text, metadata


def json_error(status: int, message: str) -> web.HTTPException:
    """An HTTP error with a JSON body ``{"error", "status"}``, to raise from a handler."""
    cls = web.HTTPRequestEntityTooLarge if status == 413 else web.HTTPBadRequest
    kwargs: dict[str, Any] = {"max_size": 0, "actual_size": 0} if status == 413 else {}
    return cls(
        text=json.dumps({"error": message, "status": status}),
        content_type="application/json",
        **kwargs,
    )


class RestChannel(InputChannel):
    name = "rest"

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def webhook(request: web.Request) -> web.Response:
            sender, text, metadata = await read_user_message(request)
            messages = await agent_getter().handle_text(
                text, sender, input_channel=self.name, metadata=metadata
            )
            return web.json_response(messages)

        app.router.add_get(f"/webhooks/{self.name}/", health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", webhook)
