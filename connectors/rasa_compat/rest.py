"""``rasa.core.channels.rest`` for Rasa 3 connectors that subclass its ``RestInput`` (a custom
sender or message field, metadata of their own): Rasa's REST channel written as a Sanic
blueprint, which ``connectors.sanic_bridge`` serves. ``?stream=true`` answers each bot message
as a line of JSON as soon as it is sent."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

from sanic import Blueprint, response
from sanic.response import ResponseStream

from connectors.rasa_compat.channel import (
    CollectingOutputChannel,
    InputChannel,
    OnNewMessage,
    QueueOutputChannel,
    UserMessage,
)
from connectors.rasa_compat.endpoints import bool_arg

_DONE = object()

__all__ = ["QueueOutputChannel", "RestInput"]


class RestInput(InputChannel):
    """Rasa's REST channel: ``GET /`` says it is up, ``POST /webhook`` takes ``{"sender",
    "message", "metadata", "input_channel"}`` and answers with the bot's messages."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    async def _extract_sender(self, req: Any) -> str | None:
        return (req.json or {}).get("sender")

    def _extract_message(self, req: Any) -> str | None:
        return (req.json or {}).get("message")

    def _extract_input_channel(self, req: Any) -> str:
        return (req.json or {}).get("input_channel") or self.name()

    def get_metadata(self, request: Any) -> dict[str, Any] | None:
        return (request.json or {}).get("metadata")

    @staticmethod
    async def on_message_wrapper(
        on_new_message: OnNewMessage,
        text: str | None,
        queue: asyncio.Queue[Any],
        sender_id: str | None,
        input_channel: str,
        metadata: dict[str, Any] | None,
    ) -> None:
        collector = QueueOutputChannel(queue)
        try:
            await on_new_message(
                UserMessage(
                    text, collector, sender_id, input_channel=input_channel, metadata=metadata
                )
            )
        finally:
            await queue.put(_DONE)

    def stream_response(
        self,
        on_new_message: OnNewMessage,
        text: str | None,
        sender_id: str | None,
        input_channel: str,
        metadata: dict[str, Any] | None,
    ) -> Any:
        async def stream(resp: Any) -> None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(
                self.on_message_wrapper(
                    on_new_message, text, queue, sender_id, input_channel, metadata
                )
            )
            while (result := await queue.get()) is not _DONE:
                await resp.write(json.dumps(result) + "\n")
            await task

        return stream

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        module = inspect.getmodule(self)
        webhook = Blueprint(
            f"custom_webhook_{type(self).__name__}", module.__name__ if module else None
        )

        @webhook.route("/", methods=["GET"])
        async def health(request: Any) -> Any:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Any) -> Any:
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if bool_arg(request, "stream", default=False):
                return ResponseStream(
                    self.stream_response(on_new_message, text, sender_id, input_channel, metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text, collector, sender_id, input_channel=input_channel, metadata=metadata
                )
            )
            return response.json(collector.messages)

        return webhook
