"""Bot messages (Rasa's REST format) as Messenger Send API messages, as Rasa's Facebook channel
sends them, with Messenger's limits kept.

A text is sent in parts split at blank lines (as Rasa) and at 2,000 characters (Messenger's
limit). Up to 3 buttons make a button template (postback buttons, as Rasa); more become quick
replies (up to 13), where Rasa dropped them and sent the text alone. ``quick_replies`` are quick
replies, ``image`` an image attachment, ``elements`` a generic template, and ``custom`` is sent
as the message itself (its ``sender.id``, if any, chooses the recipient, as in Rasa).
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.text_parts import split_text

logger = logging.getLogger(__name__)

MAX_TEXT = 2000  # characters in a text message
MAX_TEMPLATE_TEXT = 640  # characters in a button template's text
MAX_TEMPLATE_BUTTONS = 3
MAX_QUICK_REPLIES = 13
MAX_TITLE = 20  # characters in a button's or quick reply's title
MAX_PAYLOAD = 1000  # characters in a postback's or quick reply's payload

# (the recipient where a custom payload names one, else None; the Send API's "message")
Outgoing = tuple[str | None, dict[str, Any]]


def postback_buttons(buttons: list[Any]) -> list[dict[str, Any]]:
    """Rasa's buttons as Messenger's: a button without a ``type`` is a postback of its payload
    (or title); Messenger's own keys (``url`` of a ``web_url`` button) pass as they are."""
    out = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        converted = dict(button)
        converted.setdefault("type", "postback")
        converted["title"] = str(button.get("title", ""))[:MAX_TITLE] or " "
        if converted["type"] == "postback":
            converted["payload"] = _payload(button)
        out.append(converted)
    return out


def quick_replies(buttons: list[Any]) -> list[dict[str, Any]]:
    replies = []
    for button in buttons[:MAX_QUICK_REPLIES]:
        if not isinstance(button, dict):
            continue
        reply: dict[str, Any] = {"content_type": button.get("content_type", "text")}
        if reply["content_type"] == "text":
            reply["title"] = str(button.get("title", ""))[:MAX_TITLE] or " "
            reply["payload"] = _payload(button)
        replies.append(reply)
    if len(buttons) > MAX_QUICK_REPLIES:
        logger.warning(
            "facebook: %d buttons, more than Messenger's %d quick replies; the rest are dropped",
            len(buttons),
            MAX_QUICK_REPLIES,
        )
    return replies


def _payload(button: dict[str, Any]) -> str:
    payload = str(button.get("payload", button.get("title", "")))
    if len(payload) > MAX_PAYLOAD:
        logger.warning("facebook: a button payload is longer than %d characters; cut", MAX_PAYLOAD)
    return payload[:MAX_PAYLOAD]


def facebook_messages(message: dict[str, Any]) -> list[Outgoing]:
    """The Send API messages that send one bot message."""
    out: list[Outgoing] = []
    text = message.get("text")
    buttons = message.get("buttons") or []
    replies = message.get("quick_replies") or []
    parts = split_text(text, MAX_TEXT) if isinstance(text, str) else []
    if parts:
        out.extend((None, {"text": part}) for part in parts[:-1])
        last = parts[-1]
        if buttons and len(buttons) <= MAX_TEMPLATE_BUTTONS and len(last) <= MAX_TEMPLATE_TEXT:
            template = {
                "template_type": "button",
                "text": last,
                "buttons": postback_buttons(buttons),
            }
            out.append((None, {"attachment": {"type": "template", "payload": template}}))
        elif buttons or replies:
            out.append((None, {"text": last, "quick_replies": quick_replies(buttons or replies)}))
        else:
            out.append((None, {"text": last}))
    image = message.get("image")
    if isinstance(image, str) and image:
        picture = {"type": "image", "payload": {"url": image, "is_reusable": True}}
        out.append((None, {"attachment": picture}))
    attachment = message.get("attachment")
    if attachment:
        out.append((None, {"text": f"Attachment: {attachment}"[:MAX_TEXT]}))
    elements = [e for e in message.get("elements") or [] if isinstance(e, dict)]
    if elements:
        converted = [
            {**e, "buttons": postback_buttons(e["buttons"])} if e.get("buttons") else e
            for e in elements
        ]
        template = {"template_type": "generic", "elements": converted}
        out.append((None, {"attachment": {"type": "template", "payload": template}}))
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        custom = dict(custom)
        sender = custom.pop("sender", None)
        recipient = sender.get("id") if isinstance(sender, dict) else None
        out.append((str(recipient) if recipient else None, custom))
    return out
