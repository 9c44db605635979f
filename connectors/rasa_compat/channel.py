"""``rasa.core.channels.channel`` as a Rasa 3 custom connector imports it, for projects served
without Rasa installed (``connectors.rasa_compat.install``): the user message, the input channel
base class a connector subclasses, and the output channels that take the bot's messages.

The behaviour follows Rasa 3's: ``OutputChannel.send_response`` hands each part of a bot message
to the method for it (quick replies, else buttons, else text; then custom JSON, image, attachment,
elements), and the base class's methods fall back to text, so a connector that implements
``send_text_message`` alone still sends everything. ``CollectingOutputChannel`` keeps what it is
sent as Rasa's REST channel returns it."""

from __future__ import annotations

import json
import uuid
from asyncio import Queue
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from chatbot.errors import ConfigError


class UserMessage:
    """A message from a user, with the output channel the bot's answer goes to."""

    DEFAULT_SENDER_ID = "default"

    def __init__(
        self,
        text: str | None = None,
        output_channel: OutputChannel | None = None,
        sender_id: str | None = None,
        parse_data: dict[str, Any] | None = None,
        input_channel: str | None = None,
        message_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.text = text.strip() if isinstance(text, str) else text  # the bridge checks it
        self.message_id = str(message_id) if message_id is not None else uuid.uuid4().hex
        self.output_channel = (
            output_channel if output_channel is not None else CollectingOutputChannel()
        )
        self.sender_id = str(sender_id) if sender_id is not None else self.DEFAULT_SENDER_ID
        self.input_channel = input_channel
        self.parse_data = parse_data
        self.metadata = metadata
        self.headers = kwargs.get("headers")


OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class InputChannel:
    """What a Rasa custom connector subclasses: ``name`` (its routes are under
    ``/webhooks/<url_prefix>/``, ``name`` by default), ``from_credentials`` (its credentials.yml
    block, or None for an empty one) and ``blueprint`` (a Sanic blueprint of its routes, which
    hand each user message to ``on_new_message``)."""

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls()

    def url_prefix(self) -> str:
        return self.name()

    def blueprint(self, on_new_message: OnNewMessage) -> Any:
        raise NotImplementedError("a Rasa connector's blueprint() returns its Sanic Blueprint")

    @classmethod
    def raise_missing_credentials_exception(cls) -> None:
        raise ConfigError(
            f"the {cls.name()} channel needs its settings in credentials.yml, under its block"
        )

    def get_output_channel(self) -> OutputChannel | None:
        """The channel's output for messages the bot sends unasked (reminders); none here."""
        raise NotImplementedError(f"{self.name()} has no output channel of its own")

    def get_metadata(self, request: Any) -> dict[str, Any] | None:
        """What to keep of a request beside the text (``UserMessage.metadata``); none here."""
        return None


def button_to_string(button: dict[str, Any], idx: int = 0) -> str:
    """A button as one line of text: ``1: Title (/payload)``, and any other keys as JSON."""
    rest = dict(button)
    title = rest.pop("title", "")
    payload = f" ({rest.pop('payload')})" if "payload" in rest else ""
    details = f" - {json.dumps(rest, sort_keys=True)}" if rest else ""
    return f"{idx + 1}: {title}{payload}{details}"


class OutputChannel:
    """Where the bot's messages go; ``send_text_message`` is the one method a text-only channel
    must implement."""

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Send each part of one bot message by the method for it."""
        message = dict(message)
        if message.get("quick_replies"):
            await self.send_quick_replies(
                recipient_id, message.pop("text", ""), message.pop("quick_replies"), **message
            )
        elif message.get("buttons"):
            await self.send_text_with_buttons(
                recipient_id, message.pop("text", ""), message.pop("buttons"), **message
            )
        elif message.get("text"):
            await self.send_text_message(recipient_id, message.pop("text"), **message)
        if message.get("custom"):
            await self.send_custom_json(recipient_id, message.pop("custom"), **message)
        if message.get("image"):
            await self.send_image_url(recipient_id, message.pop("image"), **message)
        if message.get("attachment"):
            await self.send_attachment(recipient_id, message.pop("attachment"), **message)
        if message.get("elements"):
            await self.send_elements(recipient_id, message.pop("elements"), **message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        raise NotImplementedError("an output channel implements send_text_message")

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, f"Image: {image}")

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, f"Attachment: {attachment}")

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_message(recipient_id, text)
        for idx, button in enumerate(buttons):
            await self.send_text_message(recipient_id, button_to_string(button, idx))

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_elements(
        self, recipient_id: str, elements: Iterable[dict[str, Any]], **kwargs: Any
    ) -> None:
        for element in elements:
            title = f"{element.get('title', '')} : {element.get('subtitle', '')}"
            await self.send_text_with_buttons(recipient_id, title, element.get("buttons", []))

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self.send_text_message(recipient_id, json.dumps(json_message))


class CollectingOutputChannel(OutputChannel):
    """Keeps the messages it is sent in ``messages``, in Rasa's REST channel's shape."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    @classmethod
    def name(cls) -> str:
        return "collector"

    @staticmethod
    def _message(
        recipient_id: str,
        text: str | None = None,
        image: str | None = None,
        buttons: list[dict[str, Any]] | None = None,
        attachment: str | None = None,
        custom: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        parts = {
            "recipient_id": recipient_id,
            "text": text,
            "image": image,
            "buttons": buttons,
            "attachment": attachment,
            "custom": custom,
        }
        return {key: value for key, value in parts.items() if value is not None}

    def latest_output(self) -> dict[str, Any] | None:
        return self.messages[-1] if self.messages else None

    async def _persist_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for part in text.strip().split("\n\n"):
            await self._persist_message(self._message(recipient_id, text=part))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._persist_message(self._message(recipient_id, image=image))

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        await self._persist_message(self._message(recipient_id, attachment=attachment))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self._persist_message(self._message(recipient_id, text=text, buttons=buttons))

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self._persist_message(self._message(recipient_id, custom=json_message))


class QueueOutputChannel(CollectingOutputChannel):
    """Puts the messages it is sent on a queue (``messages``), for a streaming answer."""

    def __init__(self, message_queue: Queue[Any] | None = None) -> None:
        super().__init__()
        self.messages = message_queue if message_queue is not None else Queue()  # type: ignore[assignment]

    @classmethod
    def name(cls) -> str:
        return "queue"

    def latest_output(self) -> dict[str, Any] | None:
        raise NotImplementedError("a queue cannot be peeked at")

    async def _persist_message(self, message: dict[str, Any]) -> None:
        await self.messages.put(message)  # type: ignore[attr-defined]
