"""Fake Microsoft services on 127.0.0.1 for the Bot Framework channel: the OpenID metadata and
key set of the Bot Connector's tokens, the login's token endpoint, and the connector's
``/v3/conversations/{id}/activities``; and activities signed as the Bot Connector signs them.

Shapes follow Microsoft's Bot Framework REST documentation ("Authentication", "Send and receive
messages"): tokens are RS256 JWTs with ``iss`` https://api.botframework.com, ``aud`` the bot's app
id and a ``serviceUrl`` claim; keys carry ``endorsements`` (channel ids); the login answers a
client-credentials request with ``{"token_type", "expires_in", "access_token"}``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.connectors.servers import Recorder

APP_ID = "5b6a9e2c-0f3d-4a8e-9b1c-7d2e4f6a8b0c"
APP_PASSWORD = "Qw8~bot-client-secret"
BOT_TOKEN = "eyJ0eXAi.bot-token-for-the-connector"
KID = "fake-key-1"
USER = "29:1zPNq1EP2PFtdLKzA3rO6Y-NELAaB45v_JODZXtvMT2Rz"
BOT = {"id": "28:" + APP_ID, "name": "RestaurantBot"}
CONVERSATION = {"id": "a:1Vxyz-personal-chat", "conversationType": "personal"}

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_ids = itertools.count(1)


def jwk(key: rsa.RSAPrivateKey, kid: str, endorsements: list[str]) -> dict[str, Any]:
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "endorsements": endorsements}


class FakeMicrosoft:
    """Records the activities the bot sends (``{"conversation", "activity", "at"}``) and the
    token requests; ``answers`` scripts failures of the connector."""

    def __init__(self) -> None:
        self.url = ""  # set once served
        self.keys = [jwk(PRIVATE_KEY, KID, ["msteams", "webchat", "emulator"])]
        self.key_fetches = 0
        self.token_requests = Recorder()
        self.attempts = Recorder()
        self.calls = Recorder()
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_get("/v1/.well-known/openidconfiguration", self.metadata)
        self.app.router.add_get("/v1/.well-known/keys", self.key_set)
        self.app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        self.app.router.add_post("/v3/conversations/{conversation}/activities", self.activity)

    def sent(self) -> list[dict[str, Any]]:
        return [c["activity"] for c in self.calls.items]

    async def metadata(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": "https://api.botframework.com",
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def key_set(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        return web.json_response({"keys": self.keys})

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        await self.token_requests.add({"tenant": request.match_info["tenant"], **form})
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status=401,
            )
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
             "access_token": BOT_TOKEN}
        )  # fmt: skip

    async def activity(self, request: web.Request) -> web.Response:
        activity = await request.json()
        conversation = request.match_info["conversation"]
        await self.attempts.add({"activity": activity, "at": time.monotonic()})
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "Authorization has been denied"}},
                status=401,
            )
        if self.answers:
            status, body = self.answers.pop(0)
            return web.json_response(body, status=status)
        await self.calls.add({"conversation": conversation, "activity": activity})
        return web.json_response({"id": f"1:{next(_ids)}"}, status=201)


def message(text: str, service_url: str, **more: Any) -> dict[str, Any]:
    """A message activity from the Teams user to the bot."""
    return {
        "type": "message",
        "id": f"f:{next(_ids)}",
        "timestamp": "2026-12-06T01:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": USER, "name": "Ann Example"},
        "conversation": CONVERSATION,
        "recipient": BOT,
        "text": text,
        "textFormat": "plain",
        "locale": "en-US",
        **more,
    }


def token(
    service_url: str,
    *,
    key: rsa.RSAPrivateKey = PRIVATE_KEY,
    kid: str = KID,
    **claims: Any,
) -> str:
    """The Bot Connector's token for an activity to this bot."""
    now = int(time.time())
    body = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "exp": now + 3600,
        "nbf": now - 5,
        "serviceUrl": service_url,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, "RS256", {"kid": kid})
