"""A fake Twilio Messages API on 127.0.0.1 and the webhook requests Twilio makes, signed as
Twilio signs them.

Shapes follow Twilio's documentation: the incoming-message webhook is a form POST (``MessageSid``,
``AccountSid``, ``From``, ``To``, ``Body``, ``NumMedia``, ``MediaUrl0``, ...) with
``X-Twilio-Signature``, the Base64 HMAC-SHA1 (key: the auth token) of the URL followed by every
field's name and value sorted by name. ``POST /2010-04-01/Accounts/{sid}/Messages.json`` takes form
fields (``To``, ``From``, ``Body``, ``MediaUrl``, ...) with HTTP basic auth and answers 201 with
the message resource, or ``{"code", "message", "more_info", "status"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.connectors.servers import Recorder

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f1e2d3c4b5a69788f1e2d3c4b5a69788"
NUMBER = "+15017122661"
USER = "+15558675310"

_sids = itertools.count(1)


class FakeMessagesApi:
    """Records every request's fields (``{"fields", "at"}``); ``answers`` scripts failures."""

    def __init__(self) -> None:
        self.attempts = Recorder()
        self.calls = Recorder()  # requests that made a message
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self.create)

    def sent(self) -> list[dict[str, Any]]:
        return [c["fields"] for c in self.calls.items]

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {}
        for key in form:  # a repeated field (MediaUrl) becomes a list
            values = form.getall(key)
            fields[key] = values[0] if len(values) == 1 else list(values)
        await self.attempts.add({"fields": fields, "at": time.monotonic()})
        expected = base64.b64encode(f"{ACCOUNT}:{AUTH_TOKEN}".encode()).decode()
        authorization = request.headers.get("Authorization")
        if request.match_info["account"] != ACCOUNT or authorization != f"Basic {expected}":
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        if self.answers:
            status, body = self.answers.pop(0)
            return web.json_response({"status": status, **body}, status=status)
        await self.calls.add({"fields": fields})
        resource = {
            "sid": f"SM{next(_sids):032x}",
            "status": "queued",
            "to": fields.get("To"),
            "from": fields.get("From"),
            "body": fields.get("Body"),
        }
        return web.json_response(resource, status=201)


async def wait_sent(api: FakeMessagesApi, count: int) -> list[dict[str, Any]]:
    await api.calls.wait_count(count)
    return api.sent()


def incoming(
    body: str, *, sender: str = USER, sid: str | None = None, **more: str
) -> dict[str, str]:
    """The fields of Twilio's webhook request for an incoming SMS."""
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid or f"SM{next(_sids):032x}",
        "NumMedia": "0",
        "SmsSid": sid or "",
        "MessageSid": sid or f"SM{next(_sids):032x}",
        "AccountSid": ACCOUNT,
        "From": sender,
        "To": NUMBER,
        "Body": body,
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
        **more,
    }


def signature(url: str, fields: dict[str, str], token: str = AUTH_TOKEN) -> str:
    data = url + "".join(k + v for k, v in sorted(fields.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()
