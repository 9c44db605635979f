"""Rasa's REST channel: ``POST /webhooks/rest/webhook`` with ``{"sender", "message", "metadata"}``
answers with the list of bot messages (``{"recipient_id", "text", "buttons", "image", "custom",
...}``); ``GET /webhooks/rest/`` says the channel is up."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage, collected
from chatbot.server.bodies import kind, object_field, read_object
from chatbot.server.errors import json_error, reply_to
from chatbot.server.keys import GATE
from chatbot.store.base import MAX_CONVERSATION_ID_LENGTH, conversation_id_text_problem
from connectors.base import InputChannel

DEFAULT_SENDER = "default"


async def read_user_message(request: web.Request, channel: str) -> UserMessage:
    """The user message of a REST-channel body, or a 400 (413) naming what is wrong."""
    body = await read_object(request)
    sender = body.get("sender", DEFAULT_SENDER)
    if isinstance(sender, int) and not isinstance(sender, bool):
        sender = str(sender)  # some clients send numeric ids
    if not isinstance(sender, str) or not sender or len(sender) > MAX_CONVERSATION_ID_LENGTH:
        raise json_error(
            400,
            f"'sender' must be a non-empty string of at most {MAX_CONVERSATION_ID_LENGTH} "
            f"characters, not {kind(sender)}",
        )
    problem = conversation_id_text_problem(sender)
    if problem is not None:
        raise json_error(400, f"'sender': {problem}")
    text = body.get("message")
    if not isinstance(text, str):
        raise json_error(400, f"'message' must be a string, not {kind(text)}")
    metadata = object_field(body, "metadata") or {}
    input_channel = body.get("input_channel") or channel
    if not isinstance(input_channel, str):
        raise json_error(400, f"'input_channel' must be a string, not {kind(input_channel)}")
    return UserMessage(text, sender, input_channel, metadata)


class RestChannel(InputChannel):
    name = "rest"
    known_keys = frozenset()  # Rasa's REST channel takes no settings

    def entry(self) -> str:
        return "REST: POST /webhooks/rest/webhook"

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        app.router.add_get(f"/webhooks/{self.name}/", self.health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", self.webhook)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def webhook(self, request: web.Request) -> web.Response:
        message = await read_user_message(request, self.name)
        reply_to(request, message.sender_id)
        gate = request.app[GATE]
        answer = await gate.handle(message, client=gate.client_of(request))
        return web.json_response(collected(answer))
