"""A fake Messenger Send API (``POST /me/messages``) on 127.0.0.1 and the deliveries Messenger
posts to a webhook, signed as Messenger signs them.

Shapes follow Meta's Messenger Platform documentation: a delivery is ``{"object": "page",
"entry": [{"id", "time", "messaging": [event, ...]}]}``; an event has ``sender``, ``recipient``,
``timestamp`` and one of ``message`` (``mid``, ``text``, ``quick_reply``, ``attachments``,
``is_echo``), ``postback`` (``mid``, ``title``, ``payload``), ``delivery`` or ``read``. The Send
API answers ``{"recipient_id", "message_id"}``, or ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.connectors.servers import Recorder

VERIFY = "my-verify-token"
APP_SECRET = "0123456789abcdef0123456789abcdef"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAfakepagetoken"
PAGE = "1093284375"
PSID = "5823449273981243"

_mids = itertools.count(1)


class FakeSendApi:
    """Records every call (``{"payload", "at"}``); ``answers`` scripts failures, used in order."""

    def __init__(self) -> None:
        self.attempts = Recorder()  # every call, failed ones included
        self.calls = Recorder()  # calls that succeeded
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_post("/me/messages", self.send)

    def messages(self) -> list[dict[str, Any]]:
        return [c["payload"]["message"] for c in self.calls.items]

    async def send(self, request: web.Request) -> web.Response:
        payload = await request.json()
        await self.attempts.add({"payload": payload, "at": time.monotonic()})
        if request.headers.get("Authorization") != f"Bearer {PAGE_TOKEN}":
            error = {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
            }
            return web.json_response({"error": error}, status=400)
        if self.answers:
            status, body = self.answers.pop(0)
            return web.json_response(body, status=status)
        recipient = payload["recipient"]["id"]
        await self.calls.add({"payload": payload})
        return web.json_response({"recipient_id": recipient, "message_id": f"m_{next(_mids)}"})


async def wait_messages(api: FakeSendApi, count: int) -> list[dict[str, Any]]:
    await api.calls.wait_count(count)
    return api.messages()


def event(kind: str, body: dict[str, Any], *, sender: str = PSID) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": PAGE},
        "timestamp": int(time.time() * 1000),
        kind: body,
    }


def text_event(text: str, *, sender: str = PSID, mid: str | None = None) -> dict[str, Any]:
    return event("message", {"mid": mid or f"m_user_{next(_mids)}", "text": text}, sender=sender)


def quick_reply_event(title: str, payload: str, *, sender: str = PSID) -> dict[str, Any]:
    message = {"mid": f"m_user_{next(_mids)}", "text": title, "quick_reply": {"payload": payload}}
    return event("message", message, sender=sender)


def postback_event(title: str, payload: str, *, sender: str = PSID) -> dict[str, Any]:
    postback = {"mid": f"m_pb_{next(_mids)}", "title": title, "payload": payload}
    return event("postback", postback, sender=sender)


def delivery(*events: dict[str, Any]) -> dict[str, Any]:
    entry = {"id": PAGE, "time": int(time.time() * 1000), "messaging": list(events)}
    return {"object": "page", "entry": [entry]}


def signed(body: bytes, secret: str = APP_SECRET, *, sha1: bool = False) -> dict[str, str]:
    """The signature header Messenger sends with ``body``."""
    if sha1:
        digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        return {"X-Hub-Signature": f"sha1={digest}"}
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
