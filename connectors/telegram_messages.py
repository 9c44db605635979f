"""Bot messages (Rasa's REST format) as Telegram Bot API calls: ``sendMessage`` split at 4,096
characters with buttons as an inline keyboard, ``sendPhoto`` for images, and custom payloads
sent with the method their keys call for (as Rasa's Telegram channel chooses it)."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

from connectors.text_parts import fitting_end, utf16_units

logger = logging.getLogger(__name__)

MAX_TEXT = 4096  # UTF-16 code units in one message, as Telegram counts them
MAX_CALLBACK_DATA = 64  # bytes
LONG_PAYLOAD_PREFIX = "#"

Call = tuple[str, dict[str, Any]]  # (Bot API method, its parameters)

# Which method a custom payload calls, by the keys it has (the first whose keys are all there).
CUSTOM_METHODS: list[tuple[tuple[str, ...], str]] = [
    (("text",), "sendMessage"),
    (("photo",), "sendPhoto"),
    (("audio",), "sendAudio"),
    (("document",), "sendDocument"),
    (("sticker",), "sendSticker"),
    (("video",), "sendVideo"),
    (("video_note",), "sendVideoNote"),
    (("animation",), "sendAnimation"),
    (("voice",), "sendVoice"),
    (("media",), "sendMediaGroup"),
    (("latitude", "longitude", "title", "address"), "sendVenue"),
    (("latitude", "longitude"), "sendLocation"),
    (("phone_number", "first_name"), "sendContact"),
    (("game_short_name",), "sendGame"),
    (("action",), "sendChatAction"),
    (
        ("title", "description", "payload", "provider_token", "currency", "prices"),
        "sendInvoice",
    ),
]


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units, cut at a line break or a space when
    one is in the second half of a piece, else between two grapheme clusters."""
    pieces: list[str] = []
    while utf16_units(text) > limit:
        cut = fitting_end(text, limit)  # between two grapheme clusters
        at = text.rfind("\n", 0, cut)
        if at < cut // 2:
            at = text.rfind(" ", 0, cut)
        if at < cut // 2:
            at = cut
        pieces.append(text[:at])
        text = text[at + 1 :] if text[at] in "\n " else text[at:]
    if text:
        pieces.append(text)
    return pieces


class PayloadBook:
    """Button payloads longer than Telegram's 64-byte ``callback_data``, by a short digest.

    Bounded; a click on a button whose payload was forgotten (after a restart) is read by the
    caller as the button's title instead.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._payloads: OrderedDict[str, str] = OrderedDict()

    def callback_data(self, payload: str) -> str:
        data = payload.encode("utf-8", "surrogatepass")  # a slot value may hold a lone surrogate
        if len(data) <= MAX_CALLBACK_DATA and not payload.startswith("#"):
            return payload
        key = LONG_PAYLOAD_PREFIX + hashlib.sha256(data).hexdigest()[:40]
        self._payloads[key] = payload
        self._payloads.move_to_end(key)
        while len(self._payloads) > self.max_entries:
            self._payloads.popitem(last=False)
        return key

    def payload(self, data: str) -> str | None:
        """The payload behind ``callback_data``; None for a digest no longer known."""
        if not data.startswith(LONG_PAYLOAD_PREFIX):
            return data
        return self._payloads.get(data)


def inline_keyboard(buttons: list[dict[str, Any]], book: PayloadBook) -> dict[str, Any]:
    """One row for a few short buttons, else one button per row."""
    keys = [
        {
            "text": str(b.get("title", "")) or " ",
            "callback_data": book.callback_data(str(b.get("payload", b.get("title", "")))),
        }
        for b in buttons
        if isinstance(b, dict)
    ]
    one_row = len(keys) <= 4 and sum(len(k["text"]) for k in keys) <= 32
    return {"inline_keyboard": [keys] if one_row else [[k] for k in keys]}


def telegram_calls(message: dict[str, Any], chat: dict[str, Any], book: PayloadBook) -> list[Call]:
    """The Bot API calls that send one bot message to ``chat`` (``{"chat_id", ...}``)."""
    calls: list[Call] = []
    text = message.get("text")
    buttons = message.get("buttons") or message.get("quick_replies") or []
    if isinstance(text, str) and text.strip():
        # As Rasa's: a text without buttons is sent a paragraph (blank-line block) at a time.
        blocks = [text] if buttons else [b for b in text.strip().split("\n\n") if b.strip()]
        pieces = [piece for block in blocks for piece in split_text(block)]
        for piece in pieces[:-1]:
            calls.append(("sendMessage", {**chat, "text": piece}))
        last: dict[str, Any] = {**chat, "text": pieces[-1]}
        if buttons:
            last["reply_markup"] = inline_keyboard(buttons, book)
        calls.append(("sendMessage", last))
    image = message.get("image")
    if isinstance(image, str) and image:
        calls.append(("sendPhoto", {**chat, "photo": image}))
    attachment = message.get("attachment")
    if attachment:
        calls.append(("sendMessage", {**chat, "text": f"Attachment: {attachment}"}))
    for element in message.get("elements") or []:
        if isinstance(element, dict):
            title = f"{element.get('title', '')} : {element.get('subtitle', '')}"
            call: dict[str, Any] = {**chat, "text": title}
            if element.get("buttons"):
                call["reply_markup"] = inline_keyboard(element["buttons"], book)
            calls.append(("sendMessage", call))
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        custom_send = custom_call(custom, chat)
        if custom_send is not None:
            calls.append(custom_send)
    return calls


def custom_call(custom: dict[str, Any], chat: dict[str, Any]) -> Call | None:
    """A custom payload as the call its keys ask for (it may name its own ``chat_id``); None,
    logged, when it has the keys of no send method."""
    for keys, method in CUSTOM_METHODS:
        if all(key in custom for key in keys):
            return method, {**chat, **custom}
    logger.warning(
        "telegram: a custom payload with keys %s matches no send method; not sent",
        sorted(custom),
    )
    return None
