"""Telegram's Bot API by webhook, as Rasa's Telegram channel.

Telegram POSTs each update to ``/webhooks/telegram/webhook`` with the secret given to
``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``; a request without the right secret is
answered 403 and never read. A verified update is acknowledged at once and answered in the
background, one worker per chat so a chat's messages are answered in order; an ``update_id`` seen
before (Telegram re-sends what was not acknowledged) is not processed again.

Handled: text messages (edited ones too, as Rasa; a shared location as the text
``{"lng":<longitude>, "lat":<latitude>}``, and ``/restart`` followed by ``/start``, as Rasa) and
button clicks (``callback_query``, answered
with ``answerCallbackQuery``); a command addressed to the bot in a group (``/start@my_bot``) loses
the ``@my_bot``. The conversation is the chat, as in Rasa. Answers: ``sendMessage`` (split at 4,096
characters; buttons as an inline keyboard), ``sendPhoto``, and custom payloads.

credentials.yml ``telegram:`` keys: ``access_token`` (required), ``verify`` (the bot's username),
``webhook_url`` (where Telegram should post; with it the server calls ``setWebhook`` at startup
unless ``set_webhook: false``), ``secret_token`` (1-256 of ``A-Z a-z 0-9 _ -``; without one the
server makes one per start, which only works when it sets the webhook itself) and ``api_url``
(https://api.telegram.org).
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.server.worker_sync import shared_secret
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, json_object, same_secret
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.outbound import ApiClient, RetryPolicy
from connectors.telegram_messages import PayloadBook, telegram_calls
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
SETUP = "\x00setup"  # the worker queue of the startup calls, apart from every chat


@dataclass(frozen=True)
class Incoming:
    text: str
    chat: dict[str, Any]  # chat_id, and message_thread_id in a forum topic
    conversation_id: str
    callback_query_id: str | None = None


class TelegramChannel(BackgroundChannel):
    name = "telegram"

    def __init__(
        self,
        *,
        access_token: str,
        verify: str | None = None,
        webhook_url: str | None = None,
        secret_token: str | None = None,
        set_webhook: bool = True,
        api_url: str = "https://api.telegram.org",
        retry: RetryPolicy | None = None,
    ) -> None:
        if secret_token is None and not (webhook_url and set_webhook):
            raise ConfigError(
                "telegram: give 'secret_token' (and the same to setWebhook), or 'webhook_url' "
                "so that the server sets the webhook with a secret of its own"
            )
        self.username = verify.lstrip("@") if verify else None
        self.webhook_url = webhook_url
        self.set_webhook = set_webhook and bool(webhook_url)
        self.secret_token = secret_token or secrets.token_urlsafe(32)
        self._own_secret = secret_token is None
        # The token is part of every Bot API URL; the client logs method names only.
        self.api = ApiClient("telegram", f"{api_url.rstrip('/')}/bot{access_token}", policy=retry)
        self.seen = Deliveries("telegram")
        self._agent_getter: Callable[[], Agent] | None = None
        self.workers = ConversationWorkers("telegram")
        self.payloads = PayloadBook()

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> TelegramChannel:
        params = dict(params or {})
        if not params.get("access_token"):
            raise ConfigError("telegram: 'access_token' is required (the token from @BotFather)")
        for key in ("access_token", "verify", "webhook_url", "api_url"):
            if key in params and (not isinstance(params[key], str) or not params[key]):
                raise ConfigError(
                    f"telegram: '{key}' must be a non-empty string, not {params[key]!r}"
                )
        known = {"access_token", "verify", "webhook_url", "secret_token", "set_webhook", "api_url"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"telegram: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET.match(secret)):
            raise ConfigError(
                "telegram: 'secret_token' must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
            )
        if not isinstance(params.get("set_webhook", True), bool):
            raise ConfigError(
                f"telegram: 'set_webhook' must be true or false, not {params['set_webhook']!r}"
            )
        return cls(**params)

    def register(self, app: web.Application, agent_getter: Callable[[], Any]) -> None:
        shared = shared_secret(app, "telegram-webhook") if self._own_secret else None
        if shared is not None:  # every worker of `chatbot run --workers` sets the same webhook
            self.secret_token = base64.urlsafe_b64encode(shared).rstrip(b"=").decode()
        super().register(app, agent_getter)

    async def on_start(self) -> None:
        if self.set_webhook:
            self.workers.submit(SETUP, self.register_webhook)

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the chat the conversation is."""
        chat_id: int | str = (
            int(conversation_id) if re.fullmatch(r"-?\d+", conversation_id) else conversation_id
        )
        for message in messages:
            for method, params in telegram_calls(message, {"chat_id": chat_id}, self.payloads):
                await self._call(method, params)

    async def register_webhook(self) -> None:
        """``setWebhook`` with our URL and secret; a failure is logged, the server goes on."""
        answer = await self.api.call(
            "setWebhook",
            {
                "url": self.webhook_url,
                "secret_token": self.secret_token,
                "allowed_updates": ALLOWED_UPDATES,
            },
        )
        if answer is not None and answer.ok:
            logger.info("telegram: webhook set to %s", self.webhook_url)
        elif answer is not None:
            logger.error("telegram setWebhook: refused (%s)", answer.body.get("description"))

    async def webhook(self, request: web.Request) -> web.Response:
        presented = request.headers.get(SECRET_HEADER, "")
        if not same_secret(presented, self.secret_token):
            logger.warning("telegram: refused an update without the webhook's secret token")
            return web.json_response({"error": "wrong secret token", "status": 403}, status=403)
        try:
            update = loads(await read_body(request))
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.json_response({"error": "not an update", "status": 400}, status=400)
        if not await self.first_time(f"update:{update['update_id']}"):
            logger.debug("telegram: update %s seen before; ignored", update["update_id"])
            return web.Response(text="")
        incoming = self._incoming(update)
        app = request.app
        if incoming is not None and refusal(app, incoming.conversation_id, incoming.text) is None:
            self.workers.submit(incoming.conversation_id, lambda: self._answer(incoming, app))
        return web.Response(text="")

    def _incoming(self, update: dict[str, Any]) -> Incoming | None:
        # Every part is checked for its type: a malformed update is ignored, never an error.
        query = update.get("callback_query")
        if isinstance(query, dict):
            message = json_object(query.get("message"))
            data = query.get("data")
            if not isinstance(data, str) or not isinstance(message.get("chat"), dict):
                return None
            clicked = self.payloads.payload(data) or _button_title(message, data) or data
            return self._for_chat(message, clicked, str(query.get("id")))
        posted = json_object(update.get("message") or update.get("edited_message"))
        if not isinstance(posted.get("chat"), dict):
            return None
        text = posted.get("text")
        location = json_object(posted.get("location"))
        lng, lat = location.get("longitude"), location.get("latitude")
        if text is None and all(isinstance(v, int | float) for v in (lng, lat)):
            text = f'{{"lng":{lng}, "lat":{lat}}}'  # a shared location, as Rasa's text for it
        if json_object(posted.get("from")).get("is_bot") or not isinstance(text, str):
            return None
        if self.username:
            text = re.sub(rf"^(/\w+)@{re.escape(self.username)}\b", r"\1", text)
        return self._for_chat(posted, text, None) if text.strip() else None

    def _for_chat(
        self, message: dict[str, Any], text: str, callback_query_id: str | None
    ) -> Incoming | None:
        chat_id = message["chat"].get("id")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int | str):
            return None
        if conversation_id_problem(str(chat_id)) is not None:  # Telegram's ids are numbers
            return None
        chat: dict[str, Any] = {"chat_id": chat_id}
        if message.get("is_topic_message") and message.get("message_thread_id"):
            chat["message_thread_id"] = message["message_thread_id"]
        return Incoming(text, chat, str(chat_id), callback_query_id)

    async def _answer(self, incoming: Incoming, app: web.Application) -> None:
        if incoming.callback_query_id is not None:
            await self._call(
                "answerCallbackQuery", {"callback_query_id": incoming.callback_query_id}
            )
        # As Rasa's: a /restart is followed by a /start (the bot greets as at first contact).
        texts = [incoming.text, "/start"] if incoming.text == "/restart" else [incoming.text]
        for text in texts:
            message = UserMessage(text, incoming.conversation_id, self.name)
            for bot_message in await answer(app, message):
                for method, params in telegram_calls(bot_message, incoming.chat, self.payloads):
                    await self._call(method, params)

    async def _call(self, method: str, params: dict[str, Any]) -> None:
        called = await self.api.call(method, params)
        if called is not None and not called.ok:
            logger.error(
                "telegram %s: refused (%s); not delivered",
                method,
                called.body.get("description", f"HTTP {called.status}"),
            )


def _button_title(message: dict[str, Any], data: str) -> str | None:
    """The title of the clicked button, read from the message's keyboard (a forgotten payload)."""
    rows = json_object(message.get("reply_markup")).get("inline_keyboard")
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                return str(button.get("text", "")) or None
    return None
