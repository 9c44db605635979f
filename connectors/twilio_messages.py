"""Bot messages (Rasa's REST format) as Twilio Messages API requests (SMS and WhatsApp), as
Rasa's Twilio channel sends them, and the buttons a text user answers by number.

Texts go in parts split at blank lines (as Rasa) and at 1,600 characters (Twilio's limit of a
message body). Buttons have no place in an SMS: they are listed under the text as ``1: Yes``, and
the user's next message "1" (or a button's title) is read as that button's payload
(``ButtonMemory``); Rasa sent each button as a message of its own with its payload showing. An
image is a media attachment on WhatsApp and ``Image: <url>`` in an SMS (as Rasa: MMS works in few
countries). ``custom`` is a Messages API request of its own, its keys in the API's names (``Body``,
``MediaUrl``, ``ContentSid``) or in the Python client's that Rasa users write (``body``,
``media_url``, ``from_``), with ``To`` and ``From`` (or a messaging service) filled in as Rasa
fills them.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from connectors.base import split_text

MAX_BODY = 1600  # characters in one message's body
WHATSAPP = "whatsapp:"


def api_name(key: str) -> str:
    """A Python client's keyword (``media_url``, ``from_``) as the Messages API's field
    (``MediaUrl``, ``From``); a name already in the API's form stays as it is."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        return key
    return "".join(part.capitalize() for part in key.strip("_").split("_"))


def button_lines(buttons: list[Any]) -> list[tuple[str, str]]:
    """(title, payload) of each button."""
    out = []
    for button in buttons:
        if isinstance(button, dict):
            title = str(button.get("title", "")).strip()
            payload = str(button.get("payload", title))
            out.append((title or payload, payload))
    return out


def twilio_requests(message: dict[str, Any], *, whatsapp: bool) -> list[dict[str, Any]]:
    """The Messages API requests (fields besides ``To`` and ``From``) of one bot message."""
    out: list[dict[str, Any]] = []
    text = message.get("text")
    parts = split_text(text, MAX_BODY) if isinstance(text, str) else []
    buttons = button_lines(message.get("buttons") or message.get("quick_replies") or [])
    if buttons:
        listed = "\n".join(f"{i}: {title}" for i, (title, _) in enumerate(buttons, start=1))
        if parts and len(parts[-1]) + 1 + len(listed) <= MAX_BODY:
            parts[-1] = f"{parts[-1]}\n{listed}"
        else:
            parts.extend(split_text(listed, MAX_BODY))
    out.extend({"Body": part} for part in parts)
    image = message.get("image")
    if isinstance(image, str) and image:
        out.append({"MediaUrl": image} if whatsapp else {"Body": f"Image: {image}"})
    attachment = message.get("attachment")
    if attachment:
        out.append({"Body": f"Attachment: {attachment}"[:MAX_BODY]})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        out.append({api_name(str(k)): v for k, v in custom.items()})
    return out


class ButtonMemory:
    """The buttons last sent to each conversation, so that a text reply of a button's number or
    title is read as its payload. Bounded: the oldest conversations are forgotten first."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._buttons: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()

    def offered(self, conversation_id: str, buttons: list[tuple[str, str]]) -> None:
        self._buttons[conversation_id] = buttons
        self._buttons.move_to_end(conversation_id)
        while len(self._buttons) > self.max_entries:
            self._buttons.popitem(last=False)

    def read(self, conversation_id: str, text: str) -> str:
        """The payload ``text`` picks from the buttons last offered (they are then spent), or
        ``text`` itself."""
        buttons = self._buttons.get(conversation_id)
        if not buttons:
            return text
        said = text.strip()
        for number, (title, payload) in enumerate(buttons, start=1):
            if said == str(number) or said.casefold() == title.casefold():
                del self._buttons[conversation_id]
                return payload
        return text

    def forget(self, conversation_id: str) -> None:
        self._buttons.pop(conversation_id, None)
