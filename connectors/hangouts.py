"""Google Chat (Rasa's ``hangouts`` channel, Hangouts Chat's old name) by HTTP endpoint.

Google Chat POSTs each event to ``/webhooks/hangouts/webhook`` with a token in ``Authorization:
Bearer``: a JWT signed (RS256) by ``chat@system.gserviceaccount.com`` for the Chat app's project
number. It is checked against Google's published certificates of that account (fetched and kept
an hour, fetched again for a certificate not seen yet), for issuer, audience (``project_id``) and
expiry; anything else is a 401, never read further. Rasa checked the token only when
``project_id`` was given; here it is required, so that no one but Google Chat can talk to the bot.

The answer is the HTTP response, as Google Chat takes it (and as Rasa answers): the bot's messages
of the turn in one message, its texts one after the other, or, when any of them has buttons or an
image, a card (``cardsV2``) with a widget for each. A button's click comes back as
``CARD_CLICKED`` with the button's payload as its function, which is the user's message. The
conversation is the user (``users/123...``, unique and stable; Rasa used the display name, which
two people may share). When the app is added to a direct message or a space, the bot gets
``/user_added`` or ``/room_added`` and, removed, ``/bot_removed`` (Rasa's intents), each only
where the domain has that intent.

credentials.yml ``hangouts:`` keys: ``project_id`` (required: the Google Cloud project number of
the Chat app); ours: ``certs_url`` (Google's, for tests and proxies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import InputChannel, json_object
from connectors.jwt_keys import NotAuthorized, PublishedKeys, verified_claims
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

ISSUER = "chat@system.gserviceaccount.com"
CERTS_URL = "https://www.googleapis.com/service_accounts/v1/metadata/x509/" + ISSUER
CERTS_MAX_AGE = 3600.0
ADDED_TO_DM, ADDED_TO_ROOM, REMOVED = "/user_added", "/room_added", "/bot_removed"


class GoogleChatTokens:
    """Checks Google Chat's JWTs against the certificates Google publishes for its account."""

    def __init__(self, project_id: str, certs_url: str) -> None:
        self.project_id = project_id
        self.certs_url = certs_url
        self._http: aiohttp.ClientSession | None = None
        self.keys = PublishedKeys("hangouts", self._fetch, max_age=CERTS_MAX_AGE)

    async def check(self, header: str | None, http: aiohttp.ClientSession) -> None:
        self._http = http
        await verified_claims(
            header,
            self.keys,
            audience=self.project_id,
            issuer=ISSUER,
            public_key=lambda key: key,
        )

    async def _fetch(self) -> dict[str, Any]:
        from cryptography import x509

        assert self._http is not None
        async with self._http.get(self.certs_url) as response:
            response.raise_for_status()
            certificates = await response.json(content_type=None)
        return {
            kid: x509.load_pem_x509_certificate(pem.encode()).public_key()
            for kid, pem in json_object(certificates).items()
            if isinstance(pem, str)
        }


class HangoutsChannel(InputChannel):
    name = "hangouts"

    def __init__(self, *, project_id: str, certs_url: str = CERTS_URL) -> None:
        self.tokens = GoogleChatTokens(project_id, certs_url)
        self._http: aiohttp.ClientSession | None = None
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> HangoutsChannel:
        params = dict(params or {})
        known = {"project_id", "certs_url"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"hangouts: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if params.get("project_id") is None:
            raise ConfigError(
                "hangouts: 'project_id' is required: the project number of the Chat app, which "
                "Google Chat's tokens are made for (without it anyone could talk as Google Chat)"
            )
        for key in sorted(known & set(params)):
            value = params[key]
            if isinstance(value, int) and not isinstance(value, bool) and key == "project_id":
                params[key] = value = str(value)  # a project number written without quotes
            if not isinstance(value, str) or not value:
                raise ConfigError(f"hangouts: '{key}' must be a non-empty string, not {value!r}")
        return cls(**params)

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        self._agent_getter = agent_getter

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def close(app: web.Application) -> None:
            if self._http is not None:
                await self._http.close()
                self._http = None

        app.router.add_get(f"/webhooks/{self.name}/", health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", self.webhook)
        app.on_cleanup.append(close)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def webhook(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        try:
            await self.tokens.check(request.headers.get("Authorization"), self._session())
        except NotAuthorized as why:
            logger.warning("hangouts: refused an event: %s", why)
            return web.json_response({"error": "not authorized", "status": 401}, status=401)
        try:
            event = loads(body)
        except ValueError:
            return web.json_response({"error": "the body is not JSON", "status": 400}, status=400)
        if not isinstance(event, dict):
            return web.json_response({"error": "not an event", "status": 400}, status=400)
        incoming = self._incoming(event)
        if incoming is None:
            return web.json_response({})
        sender, text = incoming
        if refusal(request.app, sender, text) is not None:
            return web.json_response({})
        space = json_object(event.get("space"))
        room = space.get("displayName") if space.get("type") == "ROOM" else None
        message = UserMessage(text, sender, self.name, {"room": room})  # Rasa's metadata
        messages = await answer(request.app, message)
        return web.json_response(chat_message(messages))

    def _incoming(self, event: dict[str, Any]) -> tuple[str, str] | None:
        kind = event.get("type")
        message = json_object(event.get("message"))
        user = json_object(event.get("user")) or json_object(message.get("sender"))
        sender = user.get("name")
        if not isinstance(sender, str) or conversation_id_problem(sender) is not None:
            return None
        text: Any = None
        if kind == "MESSAGE":
            # In a space the app is @mentioned: argumentText is the message without the mention.
            text = message.get("argumentText") or message.get("text")
        elif kind == "CARD_CLICKED":
            action = json_object(event.get("action"))
            common = json_object(event.get("common"))
            text = action.get("actionMethodName") or common.get("invokedFunction")
        elif kind in ("ADDED_TO_SPACE", "REMOVED_FROM_SPACE"):
            space = json_object(event.get("space"))
            direct = space.get("type") == "DM" or space.get("spaceType") == "DIRECT_MESSAGE"
            if kind == "REMOVED_FROM_SPACE":
                text = REMOVED
            else:
                text = ADDED_TO_DM if direct else ADDED_TO_ROOM
            if not self._domain_has(text[1:]):
                return None
        if not isinstance(text, str) or not text.strip():
            return None
        return sender, text.strip()

    def _domain_has(self, intent: str) -> bool:
        try:
            return self._agent_getter is not None and intent in self._agent_getter().domain.intents
        except Exception:  # no model loaded: no greeting either
            return False


def chat_message(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The bot's messages of one turn as the one message Google Chat takes in a response: plain
    text where they are all texts, else one card of widgets (as Rasa's channel combines them)."""
    if not messages:
        return {}
    texts = [m.get("text") for m in messages]
    plain = all(
        set(m) <= {"recipient_id", "text"} and isinstance(m.get("text"), str) for m in messages
    )
    if plain:
        return {"text": "\n".join(t for t in texts if isinstance(t, str))}
    widgets: list[dict[str, Any]] = []
    custom: dict[str, Any] = {}
    for message in messages:
        text = message.get("text")
        if isinstance(text, str) and text:
            widgets.append({"textParagraph": {"text": text}})
        buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
        if buttons:
            widgets.append(
                {
                    "buttonList": {
                        "buttons": [
                            {
                                "text": str(b.get("title", "")),
                                "onClick": {
                                    "action": {
                                        "function": str(b.get("payload", b.get("title", "")))
                                    }
                                },
                            }
                            for b in buttons
                        ]
                    }
                }
            )
        image = message.get("image")
        if isinstance(image, str) and image:
            widgets.append({"image": {"imageUrl": image}})
        if message.get("attachment"):
            widgets.append({"textParagraph": {"text": f"Attachment: {message['attachment']}"}})
        if isinstance(message.get("custom"), dict):
            custom.update(message["custom"])  # forwarded as it is, as in Rasa
    out: dict[str, Any] = dict(custom)
    if widgets:
        card = {"cardId": "answer", "card": {"sections": [{"widgets": widgets}]}}
        out["cardsV2"] = [*out.get("cardsV2", []), card]
    return out
