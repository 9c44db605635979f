"""Bot messages sent to a conversation outside any request of its user: a reminder that fired,
an external event (``trigger_intent``) or ``execute`` with ``?output_channel=``. Each mounted
channel that can do that puts its sender in ``app[OUTPUTS]`` (``chatbot.server.keys``)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from chatbot.server.keys import OUTPUTS

logger = logging.getLogger(__name__)


async def deliver(
    app: web.Application,
    conversation_id: str,
    channel: str | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any],
) -> bool:
    """Send bot messages to a conversation through ``channel`` outside any request; False (and a
    log line) when that channel cannot (REST, the API, a channel not mounted)."""
    sender = app[OUTPUTS].get(channel or "")
    if sender is None:
        if messages:
            logger.info(
                "conversation %s: %d bot message(s) stay in the conversation: channel %r cannot "
                "send without a request",
                conversation_id,
                len(messages),
                channel,
            )
        return False
    if messages:
        await sender(conversation_id, messages, metadata)
    return True
