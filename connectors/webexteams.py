"""Cisco Webex (Rasa's ``webexteams`` channel) by webhook.

Webex POSTs a notice to ``/webhooks/webexteams/webhook`` when a message is created in a space
the bot is in: the notice names the message (``data.id``), and the bot reads the message from the
Webex API with its own token, as Rasa's channel does; a notice naming no message the bot can
read is dropped. With ``secret`` (the webhook's secret, ours), the notice must also carry Webex's
signature (``X-Spark-Signature``: HMAC-SHA1 of the body) or it is a 403 and not read. The bot's
own messages are never answered (its person id is asked once). A notice is acknowledged at once
and answered in the background, one worker per person so their messages are answered in order; a
message seen before is not processed again.

The conversation is the person (``personId``, as in Rasa); answers go to the space the message
came from (Rasa sent them to a space whose id was the person's, which fails outside a fixed
``room``), or to ``room`` where it is set. Texts are sent in parts split at blank lines (as Rasa)
and at 7,000 characters; buttons are listed under the text as ``1: Yes`` and a reply "1" or
"yes" is read as that button's payload; images are sent as files (as Rasa); ``custom`` is a
message of its own (Webex's fields: ``markdown``, ``attachments`` for an adaptive card).

credentials.yml ``webexteams:`` keys (Rasa's): ``access_token`` (required: the bot's), ``room``;
ours: ``secret`` and ``api_url`` (https://webexapis.com/v1).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, json_object, same_secret, string_credentials
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.numbered_buttons import ButtonMemory, button_lines, numbered_parts
from connectors.outbound import ApiClient, RetryPolicy
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://webexapis.com/v1"
SIGNATURE_HEADER = "X-Spark-Signature"
MAX_TEXT = 7000
MAX_ROOMS = 10_000


class WebexChannel(BackgroundChannel):
    name = "webexteams"

    def __init__(
        self,
        *,
        access_token: str,
        room: str | None = None,
        secret: str | None = None,
        api_url: str = DEFAULT_API_URL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.room = room
        self.secret = secret.encode() if secret else None
        # The token goes in a header: the client's logs and errors name the method only.
        self.api = ApiClient(
            "webexteams", api_url, headers={"Authorization": f"Bearer {access_token}"}, policy=retry
        )
        self.seen = Deliveries("webexteams")
        self.workers = ConversationWorkers("webexteams")
        self.buttons = ButtonMemory()
        self.rooms: OrderedDict[str, str] = OrderedDict()  # person -> the space they last wrote in
        self._me: str | None = None
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> WebexChannel:
        checked = string_credentials(
            "webexteams",
            params,
            ("access_token",),
            ("room", "secret", "api_url"),
            "the bot's access token, from developer.webex.com",
        )
        return cls(**checked)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if self.secret is not None:
            presented = request.headers.get(SIGNATURE_HEADER, "")
            expected = hmac.new(self.secret, body, hashlib.sha1).hexdigest()
            if not same_secret(presented, expected):
                logger.warning("webexteams: refused a notice without the webhook's signature")
                return web.json_response({"error": "invalid signature", "status": 403}, status=403)
        try:
            notice = loads(body)
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        data = json_object(json_object(notice).get("data"))
        message_id, person = data.get("id"), data.get("personId")
        if json_object(notice).get("resource") != "messages" or not isinstance(message_id, str):
            return web.Response(text="")
        if person is not None and person == await self._bot_id():
            return web.Response(text="")  # the bot's own message
        if await self.first_time(f"message:{message_id}"):
            self.workers.submit(str(person or message_id), self._job(message_id, request.app))
        return web.Response(text="")

    def _job(self, message_id: str, app: web.Application) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(message_id, app)

    async def _answer(self, message_id: str, app: web.Application) -> None:
        """Read the message the notice names, then answer it: a notice is only a pointer."""
        read = await self.api.get(f"messages/{message_id}")
        if read is None or read.status != 200:
            logger.warning("webexteams: message %s could not be read; not answered", message_id)
            return
        message = read.body
        person, room, text = message.get("personId"), message.get("roomId"), message.get("text")
        if not isinstance(person, str) or conversation_id_problem(person) is not None:
            return
        if person == await self._bot_id() or not isinstance(room, str):
            return
        if not isinstance(text, str) or not text.strip():
            return
        self.rooms[person] = room
        self.rooms.move_to_end(person)
        while len(self.rooms) > MAX_ROOMS:
            self.rooms.popitem(last=False)
        if refusal(app, person, text) is not None:
            return
        user_message = UserMessage(self.buttons.read(person, text), person, self.name)
        await self._deliver(person, await answer(app, user_message))

    async def _bot_id(self) -> str | None:
        if self._me is None:
            me = await self.api.get("people/me")
            if me is not None and me.status == 200 and isinstance(me.body.get("id"), str):
                self._me = me.body["id"]
        return self._me

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the space the person last wrote in."""
        await self._deliver(conversation_id, messages)

    async def _deliver(self, person: str, messages: list[dict[str, Any]]) -> None:
        room = self.room or self.rooms.get(person)
        target = {"roomId": room} if room else {"toPersonId": person}
        offered: list[tuple[str, str]] = []
        for bot_message in messages:
            buttons = button_lines(
                bot_message.get("buttons") or bot_message.get("quick_replies") or []
            )
            if buttons:
                offered = buttons
            for fields in webex_messages(bot_message):
                called = await self.api.call("messages", {**target, **fields})
                if called is not None and called.status != 200:
                    logger.error(
                        "webexteams messages: refused (%s); not delivered",
                        called.body.get("message") or f"HTTP {called.status}",
                    )
        if offered:
            self.buttons.offered(person, offered)
        else:
            self.buttons.forget(person)


def webex_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Webex messages (fields besides the space) of one bot message."""
    out: list[dict[str, Any]] = []
    parts = numbered_parts(message, MAX_TEXT)
    out.extend({"text": part} for part in parts)
    image = message.get("image")
    if isinstance(image, str) and image:
        out.append({"files": [image]})
    if message.get("attachment"):
        out.append({"text": f"Attachment: {message['attachment']}"})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        out.append(dict(custom))
    return out
