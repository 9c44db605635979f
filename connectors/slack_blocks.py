"""Bot messages (Rasa's REST format) as ``chat.postMessage`` bodies: text as mrkdwn, buttons as an
``actions`` block, images as an ``image`` block, attachments and custom payloads as given."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

# Slack's limits: https://api.slack.com/reference/block-kit/blocks
SECTION_TEXT = 3000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTONS_PER_BLOCK = 25
BLOCKS_PER_MESSAGE = 50


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def button_blocks(text: str, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A section (or several, for long text) with the text, then the buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in _chunks(text, SECTION_TEXT)
        if part
    ]
    elements = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": str(b.get("title", ""))[:BUTTON_TEXT] or " "},
            "value": str(b.get("payload", ""))[:BUTTON_VALUE],
            "action_id": f"button_{i}",
        }
        for i, b in enumerate(buttons)
        if isinstance(b, dict)
    ]
    for start in range(0, len(elements), BUTTONS_PER_BLOCK):
        blocks.append({"type": "actions", "elements": elements[start : start + BUTTONS_PER_BLOCK]})
    if len(blocks) > BLOCKS_PER_MESSAGE:
        logger.warning("slack: a message of %d blocks cut to %d", len(blocks), BLOCKS_PER_MESSAGE)
    return blocks[:BLOCKS_PER_MESSAGE]


def slack_posts(message: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """The ``chat.postMessage`` bodies for one bot message, in order."""
    posts: list[dict[str, Any]] = []
    text = message.get("text")
    buttons = message.get("buttons") or message.get("quick_replies") or []
    if isinstance(text, str) and text:
        if buttons:
            posts.append({"channel": channel, "text": text, "blocks": button_blocks(text, buttons)})
        else:  # as Rasa's: a paragraph (blank-line block) a post
            paragraphs = [part for part in text.strip().split("\n\n") if part.strip()]
            posts.extend({"channel": channel, "text": part, "mrkdwn": True} for part in paragraphs)
    image = message.get("image")
    if isinstance(image, str) and image:
        block = {"type": "image", "image_url": image, "alt_text": "image"}
        posts.append({"channel": channel, "text": image, "blocks": [block]})
    attachment = message.get("attachment")
    if isinstance(attachment, dict) and attachment:
        posts.append({"channel": channel, "text": "", "attachments": [attachment]})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        # As Rasa: the custom payload is chat.postMessage's arguments (it may name the channel).
        posts.append({"channel": channel, **custom})
    if message.get("elements"):
        logger.debug("slack: generic template elements are not shown on Slack")
    return posts
