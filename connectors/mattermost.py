"""Mattermost by outgoing webhook, as Rasa's Mattermost channel.

Mattermost POSTs each message that starts with the outgoing webhook's trigger word (an
@mention of the bot, say) to ``/webhooks/mattermost/webhook``, as JSON or as a form: ``token``,
``channel_id``, ``user_id``, ``post_id``, ``text``, ``trigger_word``. The message is the text
without its trigger word (as Rasa). A click on one of the bot's buttons comes to the same URL as
an interactive-message action, ``context.action`` holding the button's payload. With
``webhook_token`` (the outgoing webhook's token, ours) a message must carry it and a click the
signature (made with it) the bot put on its button, or either is a 403 (Rasa checked nothing;
without it, the server warns at start). A message is acknowledged at once and
answered in the background, one worker per user so their messages are answered in order; a
post seen before is not processed again.

Answers are posts in the channel the message came from (``POST /posts`` with the bot's token);
texts split at blank lines (as Rasa) and at 16,383 characters; buttons are interactive-message
actions whose clicks come back to ``webhook_url`` (Rasa's key) with the payload; an image is a
Markdown image; ``custom`` is a post of its own (Mattermost's fields, ``props`` included).

credentials.yml ``mattermost:`` keys (Rasa's): ``url`` (the API, e.g.
``https://chat.example.com/api/v4``), ``token`` (the bot's access token), ``webhook_url`` (this
server's webhook as Mattermost reaches it; buttons need it); ours: ``webhook_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import (
    BackgroundChannel,
    json_object,
    same_secret,
    string_credentials,
)
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.outbound import ApiClient, RetryPolicy
from connectors.text_parts import split_text
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

MAX_TEXT = 16383


class MattermostChannel(BackgroundChannel):
    name = "mattermost"

    def __init__(
        self,
        *,
        url: str,
        token: str,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token.encode() if webhook_token else None
        # The token goes in a header: the client's logs and errors name the method only.
        self.api = ApiClient(
            "mattermost", url, headers={"Authorization": f"Bearer {token}"}, policy=retry
        )
        self.seen = Deliveries("mattermost")
        self.workers = ConversationWorkers("mattermost")
        self.channels: dict[str, str] = {}  # user -> the channel they last wrote in
        self._agent_getter: Callable[[], Agent] | None = None
        if self.webhook_token is None:
            logger.warning(
                "mattermost: no 'webhook_token' in credentials.yml: anyone who can reach the "
                "webhook can talk to the bot as any user (give the outgoing webhook's token)"
            )

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> MattermostChannel:
        checked = string_credentials(
            "mattermost",
            params,
            ("url", "token"),
            ("webhook_url", "webhook_token"),
            "url: the server's API, e.g. https://chat.example.com/api/v4; token: the bot's",
        )
        return cls(**checked)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if request.content_type == "application/x-www-form-urlencoded":
            payload: Any = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            try:
                payload = loads(body)
            except ValueError:
                return web.json_response(
                    {"error": "the body is not JSON", "status": 400}, status=400
                )
        payload = json_object(payload)
        context = json_object(payload.get("context"))
        is_click = "context" in payload and "trigger_word" not in payload
        token = payload.get("token", "")
        if (
            self.webhook_token is not None
            and not is_click
            and not same_secret(token, self.webhook_token)
        ):
            logger.warning("mattermost: refused a message without the webhook's token")
            return web.json_response({"error": "wrong token", "status": 403}, status=403)
        if is_click and self.webhook_token is not None and not self._own_click(context):
            return web.json_response({"error": "wrong token", "status": 403}, status=403)
        user, channel = payload.get("user_id"), payload.get("channel_id")
        if not isinstance(user, str) or conversation_id_problem(user) is not None:
            return web.json_response({})
        if not isinstance(channel, str) or not channel:
            return web.json_response({})
        if is_click:
            text = context.get("action")
            key = f"click:{payload.get('trigger_id') or payload.get('post_id')}:{text}"
        else:
            words = str(payload.get("text", ""))
            trigger = payload.get("trigger_word")
            if isinstance(trigger, str) and trigger and words.startswith(trigger):
                words = words[len(trigger) :]
            text = words.strip()
            key = f"post:{payload.get('post_id')}"
        if not isinstance(text, str) or not text.strip():
            return web.json_response({})
        if payload.get("post_id") and not await self.first_time(key):
            return web.json_response({})
        self.channels[user] = channel
        if refusal(request.app, user, text) is None:
            self.workers.submit(user, self._job(user, text, channel, request.app))
        return web.json_response({})

    def _own_click(self, context: dict[str, Any]) -> bool:
        """A button click carries back the context the bot gave its button: its payload, signed
        with the webhook's token (the token itself is never put in a post)."""
        action = context.get("action")
        signature = context.get("signature", "")
        return isinstance(action, str) and same_secret(signature, self._sign(action))

    def _sign(self, action: str) -> bytes:
        assert self.webhook_token is not None
        return hmac.new(self.webhook_token, action.encode(), hashlib.sha256).hexdigest().encode()

    def _job(
        self, user: str, text: str, channel: str, app: web.Application
    ) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(user, text, channel, app)

    async def _answer(self, user: str, text: str, channel: str, app: web.Application) -> None:
        messages = await answer(app, UserMessage(text, user, self.name))
        await self._deliver(channel, messages)

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the channel the user last wrote in."""
        channel = self.channels.get(conversation_id)
        if channel is None:
            logger.error("mattermost: no channel known for %s; not delivered", conversation_id)
            return
        await self._deliver(channel, messages)

    async def _deliver(self, channel: str, messages: list[dict[str, Any]]) -> None:
        for bot_message in messages:
            for post in self.posts(bot_message):
                called = await self.api.call("posts", {"channel_id": channel, **post})
                if called is not None and called.status not in (200, 201):
                    logger.error(
                        "mattermost posts: refused (%s); not delivered",
                        called.body.get("message") or f"HTTP {called.status}",
                    )

    def _context(self, button: dict[str, Any]) -> dict[str, str]:
        action = str(button.get("payload", button.get("title", "")))
        if self.webhook_token is None:
            return {"action": action}
        return {"action": action, "signature": self._sign(action).decode()}

    def posts(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """The posts (besides their channel) of one bot message."""
        out: list[dict[str, Any]] = []
        text = message.get("text")
        parts = split_text(text, MAX_TEXT) if isinstance(text, str) else []
        buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
        if buttons and self.webhook_url:
            last = parts.pop() if parts else ""
            out.extend({"message": part} for part in parts)
            actions = [
                {
                    "name": str(b.get("title", "")),
                    "integration": {"url": self.webhook_url, "context": self._context(b)},
                }
                for b in buttons
            ]
            out.append({"message": last, "props": {"attachments": [{"actions": actions}]}})
        else:
            if buttons:  # without webhook_url a click could not come back: the titles, listed
                listed = "\n".join(f"- {b.get('title', '')}" for b in buttons)
                parts = [*parts[:-1], f"{parts[-1]}\n{listed}"] if parts else [listed]
            out.extend({"message": part} for part in parts)
        image = message.get("image")
        if isinstance(image, str) and image:
            out.append({"message": f"![image]({image})"})
        if message.get("attachment"):
            out.append({"message": f"Attachment: {message['attachment']}"})
        custom = message.get("custom")
        if isinstance(custom, dict) and custom:
            out.append({"message": "", **custom})
        return out
