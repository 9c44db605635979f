"""Facebook Messenger by webhook, as Rasa's Facebook channel.

Messenger checks the webhook with a GET (``hub.mode=subscribe``, ``hub.verify_token``,
``hub.challenge``): the challenge is answered when the token is the ``verify`` of
credentials.yml. Every POST is signed with the app secret (``X-Hub-Signature-256``, HMAC-SHA256
of the body; the older ``X-Hub-Signature``, SHA-1, is accepted too); a request without a valid
signature is answered 403 and never read further. A signed delivery is acknowledged at once and
answered in the background, one worker per user so a user's messages are answered in order; a
message seen before (Messenger re-sends what was not acknowledged) is not processed again.

Handled, as Rasa: text messages, quick-reply taps and postback buttons (their payload is the
user's message) and voice messages (their URL); echoes of the page's own messages, delivery and
read receipts are ignored. Every messaging event of a delivery is handled (Rasa handled the
first). The conversation is the user's page-scoped id (PSID). Answers go to the Send API
(``connectors.facebook_messages``).

credentials.yml ``facebook:`` keys (Rasa's): ``verify`` (the token you chose for the webhook),
``secret`` (the app secret), ``page-access-token``; and ``api_url``
(https://graph.facebook.com/v19.0), the Graph API to send to.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, json_object, same_secret, string_credentials
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.facebook_messages import facebook_messages
from connectors.outbound import ApiClient, RetryPolicy
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://graph.facebook.com/v19.0"
SEND = "me/messages"
CREDENTIAL_KEYS = ("verify", "secret", "page-access-token")


@dataclass(frozen=True)
class Incoming:
    sender_id: str
    text: str
    key: str  # what makes a re-sent event a repeat


class FacebookChannel(BackgroundChannel):
    name = "facebook"

    def __init__(
        self,
        *,
        verify: str,
        secret: str,
        page_access_token: str,
        api_url: str = DEFAULT_API_URL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.verify = verify
        self.secret = secret.encode()
        # The token goes in a header: the client's logs and errors name the method only.
        self.api = ApiClient(
            "facebook",
            api_url,
            headers={"Authorization": f"Bearer {page_access_token}"},
            policy=retry,
        )
        self.seen = Deliveries("facebook")
        self.workers = ConversationWorkers("facebook")
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> FacebookChannel:
        checked = string_credentials(
            "facebook",
            params,
            CREDENTIAL_KEYS,
            ("api_url",),
            "the webhook's verify token, the app secret and the page access token",
        )
        return cls(
            verify=checked["verify"],
            secret=checked["secret"],
            page_access_token=checked["page-access-token"],
            api_url=checked.get("api_url", DEFAULT_API_URL),
        )

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        app.router.add_get(f"/webhooks/{self.name}/webhook", self.verify_webhook)
        super().register(app, agent_getter)

    async def verify_webhook(self, request: web.Request) -> web.Response:
        """Messenger's subscription check: the challenge back when the verify token is ours."""
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        if request.query.get("hub.mode") == "subscribe" and same_secret(token, self.verify):
            return web.Response(text=challenge)
        logger.warning(
            "facebook: webhook check with a wrong verify token (is 'verify' in credentials.yml "
            "the token set in the app's webhook settings?)"
        )
        return web.json_response({"error": "wrong verify token", "status": 403}, status=403)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if not self._signed(request, body):
            logger.warning(
                "facebook: refused a delivery without a valid signature (is 'secret' in "
                "credentials.yml the app secret?)"
            )
            return web.json_response({"error": "invalid signature", "status": 403}, status=403)
        try:
            delivery = loads(body)
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        if not isinstance(delivery, dict) or not isinstance(delivery.get("entry"), list):
            return web.json_response({"error": "not a delivery", "status": 400}, status=400)
        app = request.app
        for entry in delivery["entry"]:
            events = json_object(entry).get("messaging")
            for event in events if isinstance(events, list) else []:
                incoming = _incoming(json_object(event))
                if incoming is None:
                    continue
                if not await self.first_time(incoming.key):
                    logger.debug("facebook: %s seen before; ignored", incoming.key)
                    continue
                if refusal(app, incoming.sender_id, incoming.text) is None:
                    self.workers.submit(incoming.sender_id, self._job(incoming, app))
        return web.Response(text="success")

    def _signed(self, request: web.Request, body: bytes) -> bool:
        for header, name, digest in (
            ("X-Hub-Signature-256", "sha256", hashlib.sha256),
            ("X-Hub-Signature", "sha1", hashlib.sha1),
        ):
            presented = request.headers.get(header)
            if presented is None:
                continue
            expected = f"{name}=" + hmac.new(self.secret, body, digest).hexdigest()
            return same_secret(presented, expected)
        return False

    def _job(self, incoming: Incoming, app: web.Application) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(incoming, app)

    async def _answer(self, incoming: Incoming, app: web.Application) -> None:
        message = UserMessage(incoming.text, incoming.sender_id, self.name)
        await self._deliver(incoming.sender_id, await answer(app, message))

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the user the conversation is."""
        await self._deliver(conversation_id, messages)

    async def _deliver(self, recipient: str, messages: list[dict[str, Any]]) -> None:
        for bot_message in messages:
            for to, sent in facebook_messages(bot_message):
                payload = {
                    "messaging_type": "RESPONSE",
                    "recipient": {"id": to or recipient},
                    "message": sent,
                }
                called = await self.api.call(SEND, payload)
                if called is not None and (called.status != 200 or "error" in called.body):
                    error = json_object(called.body.get("error"))
                    logger.error(
                        "facebook send: refused (%s); not delivered",
                        error.get("message") or f"HTTP {called.status}",
                    )


def _incoming(event: dict[str, Any]) -> Incoming | None:
    """The user's message in one messaging event, or None for anything else (an echo of the
    page's own message, a receipt, a reaction, a malformed event): never an error."""
    sender = json_object(event.get("sender")).get("id")
    if isinstance(sender, bool) or not isinstance(sender, str | int):
        return None
    sender_id = str(sender)
    if conversation_id_problem(sender_id) is not None:
        return None
    message = json_object(event.get("message"))
    postback = json_object(event.get("postback"))
    text: Any = None
    mid = message.get("mid") or postback.get("mid")
    if message:
        if message.get("is_echo"):
            return None
        quick_reply = json_object(message.get("quick_reply")).get("payload")
        attachments = message.get("attachments")
        first = json_object(attachments[0]) if isinstance(attachments, list) and attachments else {}
        if isinstance(quick_reply, str) and quick_reply:
            text = quick_reply
        elif isinstance(message.get("text"), str):
            text = message["text"]
        elif first.get("type") == "audio":
            text = json_object(first.get("payload")).get("url")
    elif postback:
        text = postback.get("payload") or postback.get("title")
    if not isinstance(text, str) or not text.strip():
        return None
    key = f"mid:{mid}" if isinstance(mid, str) and mid else None
    if key is None:  # a postback without a mid: the user and the time say which it is
        key = f"event:{sender_id}:{event.get('timestamp')}:{text}"
    return Incoming(sender_id, text, key)
