"""Bot events as the messages channels send: Rasa's output-channel split of one response into a
text (with buttons or quick replies), then custom payload, image, attachment and elements."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation.events import Event

# The text of a user event made by ``trigger_intent`` or a reminder (Rasa's external events).
EXTERNAL_MESSAGE_PREFIX = "EXTERNAL: "


def has_words(text: object) -> bool:
    """Whether a user message's text is words the user wrote: not empty, not an ``/intent``
    payload, not an external event's."""
    return (
        isinstance(text, str)
        and bool(text.strip())
        and not text.startswith(("/", EXTERNAL_MESSAGE_PREFIX))
    )


@dataclass(frozen=True)
class UserMessage:
    text: str
    sender_id: str = "default"
    input_channel: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # As Rasa's: every user message has an id (a channel's own, else a new one).
    message_id: str | None = field(default_factory=lambda: uuid.uuid4().hex)


def output_channel(input_channel: str | None) -> str | None:
    """The output channel's name that responses' ``channel:`` variations and an NLG server see
    for a message from ``input_channel``: Rasa's REST channel answers through its
    ``CollectingOutputChannel``, named ``collector``."""
    return "collector" if input_channel == "rest" else input_channel


def bot_messages(events: Iterable[Event], recipient_id: str) -> list[dict[str, Any]]:
    """The messages of the bot events among ``events``, as Rasa's ``send_response`` splits one:
    its text with its buttons or quick replies (buttons without a text too; an empty text
    without buttons is no message), then its custom
    payload, image, attachment and elements, each a message. Channels turn these into their
    own API's messages."""
    messages: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        text = event.get("text")
        base = {"recipient_id": recipient_id}
        buttons = {k: data[k] for k in ("quick_replies", "buttons") if data.get(k)}
        if text or buttons:  # an empty text alone is not sent, as in Rasa's send_response
            message: dict[str, Any] = {**base} if text is None else {**base, "text": text}
            if buttons:
                key = next(iter(buttons))  # quick replies win, as in Rasa
                message[key] = buttons[key]
            messages.append(message)
        for key in ("custom", "image", "attachment", "elements"):
            if data.get(key):
                messages.append({**base, key: data[key]})
    return messages


def collected(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bot messages as Rasa's ``CollectingOutputChannel`` (the REST and callback channels, the
    HTTP API) hands them out: a text without buttons stripped and a message per paragraph
    (blank-line block), an empty one not at all; quick replies as ``buttons``; each generic
    template element as a text ``"title : subtitle"`` with its buttons."""
    out: list[dict[str, Any]] = []
    for message in messages:
        base = {"recipient_id": message.get("recipient_id")}
        if "quick_replies" in message:
            rest = {k: v for k, v in message.items() if k != "quick_replies"}
            out.append({**rest, "buttons": message["quick_replies"]})
        elif "elements" in message:
            elements = message["elements"] if isinstance(message["elements"], list) else []
            for element in (e if isinstance(e, dict) else {} for e in elements):
                title = f"{element.get('title', '')} : {element.get('subtitle', '')}"
                out.append({**base, "text": title, "buttons": element.get("buttons", [])})
        elif "buttons" in message or "text" not in message:
            out.append(message)
        elif isinstance(message["text"], str):
            paragraphs = message["text"].strip().split("\n\n")
            out.extend({**message, "text": part} for part in paragraphs if part.strip())
    return out


def terminal_lines(message: dict[str, Any]) -> list[str]:
    """A bot message as lines for a terminal (``chatbot shell``, ``chatbot interactive``): its
    text, then its buttons numbered, its image, custom payload and attachment indented."""
    lines = [str(message["text"])] if message.get("text") else []
    buttons = message.get("buttons") or message.get("quick_replies") or []
    for number, button in enumerate(buttons, start=1):
        lines.append(f"  {number}: {_button_text(button)}")
    for key, label in (("image", "Image"), ("custom", "Custom"), ("attachment", "Attachment")):
        if message.get(key):
            lines.append(f"  {label}: {message[key]}")
    return lines


def _button_text(button: Any) -> str:
    """As Rasa's shell shows a button: its title, its payload in brackets where it has one, and
    its other keys as JSON (a misspelt ``paylaod`` shows)."""
    if not isinstance(button, dict):
        return str(button)
    rest = {k: v for k, v in button.items() if k not in ("title", "payload")}
    payload = f" ({button['payload']})" if "payload" in button else ""
    details = f" - {json.dumps(rest, sort_keys=True, default=str)}" if rest else ""
    return f"{button.get('title', '')}{payload}{details}"
