"""Microsoft Bot Framework (Teams, Web Chat and the Azure Bot Service's other channels) by
webhook, as Rasa's Bot Framework channel.

The Bot Connector service POSTs each activity to ``/webhooks/botframework/webhook`` with a JWT in
``Authorization: Bearer``. The token is checked as the Bot Framework's authentication spec asks:
signed (RS256) by a key of the OpenID metadata's key set (fetched, cached for a day, fetched again
for a key not seen yet), issued by ``https://api.botframework.com`` for this bot (``aud`` is the
``app_id``), not expired (5 minutes of clock skew), the key endorsed for the activity's channel,
and the token's ``serviceUrl`` the activity's; any failure is a 401 and the activity is never
read further. (Rasa checked the signature and audience.) The service URL is where the answers
go with the bot's own token (OAuth client credentials, cached until shortly before it expires),
so an activity that is not Microsoft's never makes the bot send its token anywhere.

A checked ``message`` activity is acknowledged at once and answered in the background, one worker
per user so a user's messages are answered in order; an activity id seen before is not processed
again. The user's message is the text, less the ``<at>bot</at>`` mention of a Teams channel, or a
card button's payload. Other activity types (conversation updates, typing) are acknowledged and
ignored. The conversation is the user's id (``from.id``, as in Rasa). Answers:
``connectors.botframework_messages``. A reminder goes to the conversation where the user last
wrote (known since this process started).

credentials.yml ``botframework:`` keys (Rasa's): ``app_id``, ``app_password``; ours:
``tenant_id`` (a single-tenant bot's tenant; default ``botframework.com``), and ``login_url``
and ``openid_url`` (Microsoft's, for other clouds).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, json_object, string_credentials
from connectors.botframework_messages import activities
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.jwt_keys import NotAuthorized, PublishedKeys, verified_claims
from connectors.outbound import ApiClient, RetryPolicy
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

LOGIN_URL = "https://login.microsoftonline.com"
OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
KEYS_MAX_AGE = 24 * 3600.0
MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
MAX_REFERENCES = 10_000


@dataclass(frozen=True)
class Reference:
    """Where a user's conversation is answered: the service URL, the conversation, the bot."""

    service_url: str
    conversation: dict[str, Any]
    bot: dict[str, Any]


class TokenChecker:
    """Checks the Bot Connector's JWTs against the keys Microsoft publishes."""

    def __init__(self, app_id: str, openid_url: str, http: Callable[[], aiohttp.ClientSession]):
        self.app_id = app_id
        self.openid_url = openid_url
        self._http = http
        self.keys = PublishedKeys("botframework", self._fetch, max_age=KEYS_MAX_AGE)

    async def check(self, header: str | None, activity: dict[str, Any]) -> None:
        import jwt

        def endorsed(entry: dict[str, Any]) -> None:
            channel = activity.get("channelId")
            endorsements = entry.get("endorsements")
            listed = endorsements if isinstance(endorsements, list) else []
            if isinstance(channel, str) and listed and channel not in listed:
                raise NotAuthorized(f"the key is not endorsed for channel {channel!r}")

        claims = await verified_claims(
            header,
            self.keys,
            audience=self.app_id,
            issuer=ISSUER,
            public_key=lambda entry: jwt.PyJWK(entry).key,
            check_key=endorsed,
        )
        # As Microsoft's SDKs: a token without the claim is refused too.
        if claims.get("serviceUrl") != activity.get("serviceUrl"):
            raise NotAuthorized("the token's serviceUrl is not the activity's")

    async def _fetch(self) -> dict[str, Any]:
        http = self._http()
        async with http.get(self.openid_url) as response:
            response.raise_for_status()
            metadata = await response.json(content_type=None)
        async with http.get(json_object(metadata)["jwks_uri"]) as response:
            response.raise_for_status()
            keys = (await response.json(content_type=None))["keys"]
        return {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}


class BotFrameworkChannel(BackgroundChannel):
    name = "botframework"

    def __init__(
        self,
        *,
        app_id: str,
        app_password: str,
        tenant_id: str = "botframework.com",
        login_url: str = LOGIN_URL,
        openid_url: str = OPENID_URL,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.app_id = app_id
        self._password = app_password
        self.token_url = f"{login_url.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self.api = ApiClient("botframework", "", policy=retry)
        self.checker = TokenChecker(app_id, openid_url, self._session)
        self.seen = Deliveries("botframework")
        self.workers = ConversationWorkers("botframework")
        self.references: OrderedDict[str, Reference] = OrderedDict()
        self._token: tuple[str, float] | None = None  # (token, when it must be renewed)
        self._token_lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> BotFrameworkChannel:
        checked = string_credentials(
            "botframework",
            params,
            ("app_id", "app_password"),
            ("tenant_id", "login_url", "openid_url"),
            "app_id and app_password: the Azure bot's Microsoft App ID and its client secret",
        )
        return cls(**checked)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        async def close_session(app: web.Application) -> None:
            if self._http is not None:
                await self._http.close()
                self._http = None

        super().register(app, agent_getter)
        app.on_cleanup.append(close_session)

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            activity = loads(await read_body(request))
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        if not isinstance(activity, dict):
            return web.json_response({"error": "not an activity", "status": 400}, status=400)
        try:
            await self.checker.check(request.headers.get("Authorization"), activity)
        except NotAuthorized as why:
            logger.warning("botframework: refused an activity: %s", why)
            return web.json_response({"error": "not authorized", "status": 401}, status=401)
        incoming = _incoming(activity)
        if incoming is None:
            return web.Response(status=200)
        sender, text, reference, key, metadata = incoming
        if key is not None and not await self.first_time(key):
            logger.debug("botframework: %s seen before; ignored", key)
            return web.Response(status=200)
        self._remember(sender, reference)
        if refusal(request.app, sender, text) is None:
            job = self._job(sender, text, reference, request.app, metadata)
            self.workers.submit(sender, job)
        return web.Response(status=200)

    def _remember(self, sender: str, reference: Reference) -> None:
        self.references[sender] = reference
        self.references.move_to_end(sender)
        while len(self.references) > MAX_REFERENCES:
            self.references.popitem(last=False)

    def _job(
        self,
        sender: str,
        text: str,
        reference: Reference,
        app: web.Application,
        metadata: dict[str, Any],
    ) -> Callable[[], Awaitable[None]]:
        return lambda: self._answer(sender, text, reference, app, metadata)

    async def _answer(
        self,
        sender: str,
        text: str,
        ref: Reference,
        app: web.Application,
        metadata: dict[str, Any],
    ) -> None:
        message = UserMessage(text, sender, self.name, metadata)
        await self._deliver(sender, ref, await answer(app, message))

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): where the user last wrote."""
        reference = self.references.get(conversation_id)
        if reference is None:
            logger.error(
                "botframework: no conversation known for %s since this process started; "
                "not delivered",
                conversation_id,
            )
            return
        await self._deliver(conversation_id, reference, messages)

    async def _deliver(
        self, recipient: str, reference: Reference, messages: list[dict[str, Any]]
    ) -> None:
        # Quoted whole, as Microsoft's SDKs quote it (Teams' ids hold ':', '@' and ';').
        conversation_id = quote(str(reference.conversation.get("id", "")), safe="")
        url = f"{reference.service_url.rstrip('/')}/v3/conversations/{conversation_id}/activities"
        for bot_message in messages:
            for activity in activities(bot_message):
                activity.setdefault("from", reference.bot)
                activity.setdefault("recipient", {"id": recipient})
                activity.setdefault("conversation", reference.conversation)
                activity.setdefault("channelData", {"notification": {"alert": "true"}})
                token = await self._bot_token()
                if token is None:
                    return
                called = await self.api.call(
                    url, activity, headers={"Authorization": f"Bearer {token}"}
                )
                if called is not None and called.status not in (200, 201, 202):
                    error = json_object(called.body.get("error"))
                    logger.error(
                        "botframework send: refused (%s); not delivered",
                        error.get("message") or f"HTTP {called.status}",
                    )

    async def _bot_token(self) -> str | None:
        """The bot's own token for the connector (client credentials), renewed a few minutes
        before it expires; None (logged) when Microsoft's login refuses or is away."""
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            form = {
                "grant_type": "client_credentials",
                "client_id": self.app_id,
                "client_secret": self._password,
                "scope": SCOPE,
            }
            try:
                async with self._session().post(self.token_url, data=form) as response:
                    body = json_object(await response.json(content_type=None))
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                logger.error("botframework: no token from %s (%s)", self.token_url, error)
                return None
            token, expires = body.get("access_token"), body.get("expires_in")
            if status != 200 or not isinstance(token, str):
                logger.error(
                    "botframework: the login refused the app's credentials (%s)",
                    body.get("error_description") or body.get("error") or f"HTTP {status}",
                )
                return None
            lifetime = float(expires) if isinstance(expires, int | float) else 3600.0
            self._token = (token, time.monotonic() + max(lifetime - 300.0, 60.0))
            return token


def _incoming(
    activity: dict[str, Any],
) -> tuple[str, str, Reference, str | None, dict[str, Any]] | None:
    """(sender, text, where to answer, what makes a repeat, metadata) of a message activity;
    None for anything else (another type, a malformed activity): never an error. As Rasa's, the
    activity's attachments (a file the user sent) are the message's metadata ``attachments``,
    and a message of attachments alone is one with no text."""
    if activity.get("type") != "message":
        return None
    sender = json_object(activity.get("from")).get("id")
    service_url = activity.get("serviceUrl")
    conversation = json_object(activity.get("conversation"))
    if not isinstance(sender, str) or conversation_id_problem(sender) is not None:
        return None
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        return None
    if not isinstance(conversation.get("id"), str):
        return None
    text = activity.get("text")
    text = MENTION.sub("", text).strip() if isinstance(text, str) else ""
    if not text:  # a card button whose action carries its payload in ``value``
        payload = json_object(activity.get("value")).get("payload")
        text = payload if isinstance(payload, str) else ""
    attachments = activity.get("attachments")
    metadata = {"attachments": attachments} if isinstance(attachments, list) and attachments else {}
    if not text.strip() and not metadata:
        return None
    reference = Reference(service_url, conversation, json_object(activity.get("recipient")))
    activity_id = activity.get("id")
    key = f"activity:{conversation['id']}:{activity_id}" if isinstance(activity_id, str) else None
    return sender, text, reference, key, metadata
