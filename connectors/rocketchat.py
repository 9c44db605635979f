"""Rocket.Chat by outgoing webhook, as Rasa's Rocket.Chat channel.

Rocket.Chat's outgoing-webhook integration POSTs each message to ``/webhooks/rocketchat/webhook``
(``token``, ``channel_id``, ``message_id``, ``user_name``, ``text``, ``bot``); a livechat room's
webhook posts ``{"_id": room, "visitor": ..., "messages": [{"msg", "username"}]}``. As in Rasa the
conversation is the room, and the bot's own messages are not answered. With ``webhook_token``
(the integration's token, ours) a message must carry it or is a 403 (Rasa checked nothing;
without it, the server warns at start). A message is acknowledged at once and answered in the
background, one worker per room so its messages are answered in order; a message seen before is
not processed again.

The bot logs in with ``user`` and ``password`` (``POST /api/v1/login``, again when its session has
expired) and posts with ``chat.postMessage``: texts split at blank lines (as Rasa) and at 5,000
characters; buttons as message-button attachments whose click sends the payload into the room (as
Rasa); an image as an image attachment; ``elements`` as attachments; ``custom`` as a post's fields
(``channel`` or ``roomId``, ``text``, ``attachments``, ...).

credentials.yml ``rocketchat:`` keys (Rasa's): ``user``, ``password``, ``server_url``; ours:
``webhook_token``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

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

MAX_TEXT = 5000


class RocketChatChannel(BackgroundChannel):
    name = "rocketchat"

    def __init__(
        self,
        *,
        user: str,
        password: str,
        server_url: str,
        webhook_token: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.user = user
        self._password = password
        self.webhook_token = webhook_token.encode() if webhook_token else None
        self.api = ApiClient("rocketchat", f"{server_url.rstrip('/')}/api/v1", policy=retry)
        self.seen = Deliveries("rocketchat")
        self.workers = ConversationWorkers("rocketchat")
        self._session: dict[str, str] | None = None  # X-Auth-Token and X-User-Id
        self._login_lock = asyncio.Lock()
        self._agent_getter: Callable[[], Agent] | None = None
        if self.webhook_token is None:
            logger.warning(
                "rocketchat: no 'webhook_token' in credentials.yml: anyone who can reach the "
                "webhook can talk to the bot as any user (give the integration's token)"
            )

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> RocketChatChannel:
        checked = string_credentials(
            "rocketchat",
            params,
            ("user", "password", "server_url"),
            ("webhook_token",),
            "the bot user's name and password, and the server's URL",
        )
        return cls(**checked)

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            payload = json_object(loads(await read_body(request)))
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        token = payload.get("token", "")
        if self.webhook_token is not None and not same_secret(token, self.webhook_token):
            logger.warning("rocketchat: refused a message without the integration's token")
            return web.json_response({"error": "wrong token", "status": 403}, status=403)
        if "visitor" in payload:  # a livechat room
            messages = payload.get("messages")
            first = json_object(messages[0]) if isinstance(messages, list) and messages else {}
            text, sender, room = first.get("msg"), first.get("username"), payload.get("_id")
            message_id = first.get("_id")
        else:
            text, sender = payload.get("text"), payload.get("user_name")
            room, message_id = payload.get("channel_id"), payload.get("message_id")
        if payload.get("bot") or sender == self.user:  # the bot's own message
            return web.Response(text="")
        if not isinstance(room, str) or conversation_id_problem(room) is not None:
            return web.Response(text="")
        if not isinstance(text, str) or not text.strip():
            return web.Response(text="")
        if isinstance(message_id, str) and not await self.first_time(f"message:{message_id}"):
            return web.Response(text="")
        if refusal(request.app, room, text) is None:
            self.workers.submit(room, self._job(room, text, request.app))
        return web.Response(text="")

    def _job(self, room: str, text: str, app: web.Application) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(room, text, app)

    async def _answer(self, room: str, text: str, app: web.Application) -> None:
        await self._deliver(room, await answer(app, UserMessage(text, room, self.name)))

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the room the conversation is."""
        await self._deliver(conversation_id, messages)

    async def _deliver(self, room: str, messages: list[dict[str, Any]]) -> None:
        for bot_message in messages:
            for post in rocketchat_posts(bot_message):
                target = {} if "channel" in post or "roomId" in post else {"roomId": room}
                await self._post({**target, **post})

    async def _post(self, fields: dict[str, Any]) -> None:
        for attempt in (1, 2):  # a second time after logging in again: the session expired
            session = await self._login(renew=attempt == 2)
            if session is None:
                return
            called = await self.api.call("chat.postMessage", fields, headers=session)
            if called is None:
                return
            if called.status == 401 and attempt == 1:
                continue
            if called.status != 200 or called.body.get("success") is False:
                logger.error(
                    "rocketchat chat.postMessage: refused (%s); not delivered",
                    called.body.get("error") or f"HTTP {called.status}",
                )
            return

    async def _login(self, *, renew: bool = False) -> dict[str, str] | None:
        async with self._login_lock:
            if self._session is not None and not renew:
                return self._session
            called = await self.api.call("login", {"user": self.user, "password": self._password})
            data = json_object(called.body.get("data")) if called is not None else {}
            token, user_id = data.get("authToken"), data.get("userId")
            if not isinstance(token, str) or not isinstance(user_id, str):
                logger.error(
                    "rocketchat: the login of %r was refused (%s)",
                    self.user,
                    (called.body.get("message") or called.body.get("error"))
                    if called is not None
                    else "no answer",
                )
                self._session = None
                return None
            self._session = {"X-Auth-Token": token, "X-User-Id": user_id}
            return self._session


def rocketchat_posts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``chat.postMessage`` fields (besides the room) of one bot message."""
    out: list[dict[str, Any]] = []
    text = message.get("text")
    parts = split_text(text, MAX_TEXT) if isinstance(text, str) else []
    buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
    if buttons:
        last = parts.pop() if parts else ""
        out.extend({"text": part} for part in parts)
        actions = [
            {
                "type": "button",
                "text": str(b.get("title", "")),
                "msg": str(b.get("payload", b.get("title", ""))),
                "msg_in_chat_window": True,
            }
            for b in buttons
        ]
        out.append({"text": last, "attachments": [{"actions": actions}]})
    else:
        out.extend({"text": part} for part in parts)
    image = message.get("image")
    if isinstance(image, str) and image:
        out.append({"attachments": [{"image_url": image, "collapsed": False}]})
    if message.get("attachment"):
        out.append({"text": f"Attachment: {message['attachment']}"})
    elements = [e for e in message.get("elements") or [] if isinstance(e, dict)]
    if elements:
        out.append({"attachments": elements})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        post = dict(custom)
        if "room_id" in post:  # the Python client's name, as Rasa users write it
            post.setdefault("roomId", post.pop("room_id"))
        if "channel" in post:
            post.pop("roomId", None)
        out.append(post)
    return out
