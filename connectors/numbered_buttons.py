"""Buttons on channels that have none (SMS, WhatsApp by Twilio, Webex): listed under the text
as ``1: Yes``, ``2: No``, and the user's next message "1" (or a button's title) read as that
button's payload. Rasa's channels there sent each button as a message of its own, payload
showing, or dropped them."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from connectors.text_parts import split_text


def button_lines(buttons: list[Any]) -> list[tuple[str, str]]:
    """(title, payload) of each button."""
    out = []
    for button in buttons:
        if isinstance(button, dict):
            title = str(button.get("title", "")).strip()
            payload = str(button.get("payload", title))
            out.append((title or payload, payload))
    return out


def numbered_parts(message: dict[str, Any], limit: int) -> list[str]:
    """A bot message's text in parts of at most ``limit`` characters (``split_text``) with its
    buttons (or quick replies) listed by number under the last part, or after it where they do
    not fit."""
    text = message.get("text")
    parts = split_text(text, limit) if isinstance(text, str) else []
    buttons = button_lines(message.get("buttons") or message.get("quick_replies") or [])
    if buttons:
        listed = "\n".join(f"{i}: {title}" for i, (title, _) in enumerate(buttons, start=1))
        if parts and len(parts[-1]) + 1 + len(listed) <= limit:
            parts[-1] = f"{parts[-1]}\n{listed}"
        else:
            parts.extend(split_text(listed, limit))
    return parts


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
