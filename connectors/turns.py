"""A user message through the server's gate (limits, metrics, logs) for the channels that answer
after they have acknowledged it: the socket.io chat, Slack and Telegram.

``refusal`` checks the limits when the message arrives; ``answer`` runs the turn later, in the
conversation's worker, and never raises for a failure of the bot: it logs it and answers with the
server's apology where a waiting user should be told (the store is down, the conversation busy).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from chatbot.conversation.messages import UserMessage
from chatbot.errors import ChatbotError
from chatbot.server.errors import apology_messages, failure_of
from chatbot.server.keys import GATE
from chatbot.server.limits import MessageTooLong, RateLimited

logger = logging.getLogger(__name__)


def refusal(
    app: web.Application, sender_id: str, text: str, client: str | None = None
) -> str | None:
    """None when the server takes the message; else why not (too long, too many). ``client``:
    the address of a client that talks to the server directly (the socket.io chat's)."""
    try:
        app[GATE].admit(sender_id, text, client)
    except (MessageTooLong, RateLimited) as refused:
        logger.warning("%s: message refused (%s)", sender_id, refused)
        return str(refused)
    return None


async def answer(app: web.Application, message: UserMessage) -> list[dict[str, Any]]:
    """The bot's messages (Rasa's REST format) for an admitted message."""
    try:
        return await app[GATE].handle(message, admitted=True)
    except ChatbotError as error:
        logger.error(
            "%s: conversation %s: no answer: %s", message.input_channel, message.sender_id, error
        )
        return apology_messages(message.sender_id) if failure_of(error).apology else []
