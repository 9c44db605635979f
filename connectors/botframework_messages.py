"""Bot messages (Rasa's REST format) as Bot Framework activities (Microsoft Teams, Web Chat and
the other Azure Bot Service channels), as Rasa's Bot Framework channel sends them.

Texts go in parts split at blank lines (as Rasa). Buttons make a hero card whose subtitle is the
text, as in Rasa; each button is a ``messageBack`` action that sends the payload and shows the
title in the chat (Rasa passed ``{title, payload}`` through, which Bot Framework's card actions do
not read, so its buttons did nothing); a button that is already a card action (it has a ``type``)
passes as it is. An image is a hero card with the image, ``elements`` are activities of their own,
and ``custom`` is an activity (``type``, ``text`` and the like filled in as Rasa fills them).
"""

from __future__ import annotations

from typing import Any

HERO_CARD = "application/vnd.microsoft.card.hero"


def card_actions(buttons: list[Any]) -> list[dict[str, Any]]:
    actions = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        if "type" in button:  # already a Bot Framework card action
            actions.append(dict(button))
            continue
        title = str(button.get("title", ""))
        payload = str(button.get("payload", title))
        actions.append(
            {
                "type": "messageBack",
                "title": title,
                "text": payload,
                "displayText": title,
                "value": {"payload": payload},
            }
        )
    return actions


def activities(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The activity bodies (without ``from``, ``recipient`` and ``conversation``) of one bot
    message."""
    out: list[dict[str, Any]] = []
    text = message.get("text")
    parts = [p for p in text.strip().split("\n\n") if p.strip()] if isinstance(text, str) else []
    buttons = message.get("buttons") or message.get("quick_replies") or []
    if buttons:
        last = parts.pop() if parts else ""
        out.extend({"type": "message", "text": part} for part in parts)
        content = {"subtitle": last, "buttons": card_actions(buttons)}
        hero = {"contentType": HERO_CARD, "content": content}
        out.append({"type": "message", "text": "", "attachments": [hero]})
    else:
        out.extend({"type": "message", "text": part} for part in parts)
    image = message.get("image")
    if isinstance(image, str) and image:
        hero = {"contentType": HERO_CARD, "content": {"images": [{"url": image}]}}
        out.append({"type": "message", "text": "", "attachments": [hero]})
    attachment = message.get("attachment")
    if attachment:
        out.append({"type": "message", "text": f"Attachment: {attachment}"})
    for element in message.get("elements") or []:
        if isinstance(element, dict):
            out.append({"type": "message", "text": "", **element})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        out.append({"type": "message", "text": "", **custom})
    return out
