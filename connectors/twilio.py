"""Twilio (SMS and WhatsApp) by webhook, as Rasa's Twilio channel.

Twilio POSTs each incoming message, form-encoded (``From``, ``Body``, ``MessageSid``, ...), to
``/webhooks/twilio/webhook``, signed with the account's auth token (``X-Twilio-Signature``:
HMAC-SHA1 of the URL Twilio called and the sorted fields). A request without a valid signature is
answered 403 and never read further (Rasa did not check). The signature covers the public URL,
which a proxy in front of the server may change (``https`` ending at the proxy, another host): the
URL as the server sees it, as ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` give it and with
``https`` are tried, and ``webhook_url`` in credentials.yml, where given, is the URL. A signed
message is acknowledged at once with empty TwiML and answered in the background through the
Messages API, one worker per sender so a sender's messages are answered in order; a ``MessageSid``
seen before (Twilio retries) is not processed again.

The conversation is the sender's number (``+15551234567``, or ``whatsapp:+15551234567``);
WhatsApp answers go from ``whatsapp:<twilio_number>``. As Rasa, "¡" in a message is read as "@"
(carriers garble the "@" of an SMS). A message with media and no text is its first media URL.
Answers: ``connectors.twilio_messages``.

credentials.yml ``twilio:`` keys (Rasa's): ``account_sid``, ``auth_token``, ``twilio_number``
(``+1...``, or ``whatsapp:+1...``); ours: ``webhook_url`` and ``api_url``
(https://api.twilio.com).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from yarl import URL

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, same_secret, string_credentials
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.numbered_buttons import ButtonMemory, button_lines
from connectors.outbound import ApiClient, RetryPolicy
from connectors.turns import answer, refusal
from connectors.twilio_messages import WHATSAPP, twilio_requests

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
REQUIRED = ("account_sid", "auth_token", "twilio_number")


class TwilioChannel(BackgroundChannel):
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        twilio_number: str,
        webhook_url: str | None = None,
        api_url: str = DEFAULT_API_URL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.auth_token = auth_token.encode()
        self.twilio_number = twilio_number
        self.webhook_url = webhook_url
        basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        # The credentials go in a header: the client's logs and errors name the method only.
        self.api = ApiClient(
            "twilio",
            f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}",
            headers={"Authorization": f"Basic {basic}"},
            policy=retry,
            form=True,
        )
        self.seen = Deliveries("twilio")
        self.workers = ConversationWorkers("twilio")
        self.buttons = ButtonMemory()
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> TwilioChannel:
        checked = string_credentials(
            "twilio", params, REQUIRED, ("webhook_url", "api_url"), "from the Twilio console"
        )
        return cls(**checked)

    async def webhook(self, request: web.Request) -> web.Response:
        fields = await signed_form(request, self.auth_token, self.webhook_url, self.name)
        if fields is None:
            return web.json_response({"error": "invalid signature", "status": 403}, status=403)
        form = dict(fields)
        sender, sid = form.get("From", ""), form.get("MessageSid") or form.get("SmsSid", "")
        text = form.get("Body", "").replace("¡", "@")
        if not text.strip() and form.get("NumMedia", "0") not in ("", "0"):
            text = form.get("MediaUrl0", "")
        twiml = web.Response(text=EMPTY_TWIML, content_type="text/xml")
        if not sender or conversation_id_problem(sender) is not None or not text.strip():
            return twiml
        if sid and not await self.first_time(f"sid:{sid}"):
            logger.debug("twilio: message %s seen before; ignored", sid)
            return twiml
        if refusal(request.app, sender, text) is None:
            self.workers.submit(sender, self._job(sender, text, request.app))
        return twiml

    def _job(self, sender: str, text: str, app: web.Application) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(sender, text, app)

    async def _answer(self, sender: str, text: str, app: web.Application) -> None:
        message = UserMessage(self.buttons.read(sender, text), sender, self.name)
        await self._deliver(sender, await answer(app, message))

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): to the sender the conversation is."""
        await self._deliver(conversation_id, messages)

    async def _deliver(self, recipient: str, messages: list[dict[str, Any]]) -> None:
        whatsapp = recipient.startswith(WHATSAPP)
        sender = self.twilio_number
        if whatsapp and not sender.startswith(WHATSAPP):
            sender = WHATSAPP + sender
        offered: list[tuple[str, str]] = []
        for bot_message in messages:
            buttons = bot_message.get("buttons") or bot_message.get("quick_replies")
            if buttons:
                offered = button_lines(buttons)
            for fields in twilio_requests(bot_message):
                fields.setdefault("To", recipient)
                if "MessagingServiceSid" not in fields:
                    fields.setdefault("From", sender)
                if "MediaUrl" not in fields and "ContentSid" not in fields:
                    fields.setdefault("Body", "")
                called = await self.api.call("Messages.json", fields)
                if called is not None and called.status not in (200, 201):
                    logger.error(
                        "twilio Messages: refused (%s); not delivered",
                        called.body.get("message") or f"HTTP {called.status}",
                    )
        # Numbers answer the latest question: buttons of this turn, or none.
        if offered:
            self.buttons.offered(recipient, offered)
        else:
            self.buttons.forget(recipient)


async def signed_form(
    request: web.Request, auth_token: bytes, webhook_url: str | None, channel: str
) -> list[tuple[str, str]] | None:
    """The request's form fields where Twilio signed them (``twilio_signed``), else None, the
    refusal logged."""
    body = await read_body(request)
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        fields = None
    if fields is None or not twilio_signed(request, fields, auth_token, webhook_url):
        logger.warning(
            "%s: refused a request without a valid signature (is 'auth_token' the account's? "
            "Behind a proxy, set 'webhook_url' to the URL in Twilio's console)",
            channel,
        )
        return None
    return fields


def twilio_signed(
    request: web.Request, fields: list[tuple[str, str]], auth_token: bytes, webhook_url: str | None
) -> bool:
    """Whether ``X-Twilio-Signature`` is Twilio's signature of the request: the Base64
    HMAC-SHA1, keyed with the auth token, of the URL Twilio called followed by each field's name
    and value sorted by name (a repeated field's values in order, as Twilio's validator sorts
    them)."""
    presented = request.headers.get(SIGNATURE_HEADER)
    if not presented:
        return False
    signed_fields = "".join(k + v for k, v in sorted(fields))
    for url in _candidate_urls(request, webhook_url):
        mac = hmac.new(auth_token, (url + signed_fields).encode(), hashlib.sha1)
        if same_secret(presented, base64.b64encode(mac.digest())):
            return True
    return False


def _candidate_urls(request: web.Request, webhook_url: str | None) -> list[str]:
    """The URLs Twilio may have signed: ``webhook_url`` alone where given, else the URL as seen
    here, as a proxy's forwarded headers give it, and with ``https``; each with and without an
    explicit port (Twilio drops the port of an https URL)."""
    if webhook_url:
        return [webhook_url]
    seen = request.url
    urls = [seen, seen.with_scheme("https")]
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if proto in ("http", "https") or host:
        try:
            forwarded = URL.build(
                scheme=proto or seen.scheme,
                authority=host or seen.raw_authority,
                path=seen.raw_path,
                query_string=seen.raw_query_string,
                encoded=True,
            )
        except ValueError:
            forwarded = None
        if forwarded is not None:
            urls.append(forwarded)
    found: list[str] = []
    for url in urls:
        for variant in (str(url), str(url.with_port(None)) if url.is_absolute() else None):
            if variant and variant not in found:
                found.append(variant)
    return found
