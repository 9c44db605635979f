"""A fake Slack: its Web API (``chat.postMessage``) on 127.0.0.1, and signed Events API requests.

Payload shapes follow Slack's documentation of the Events API (event callbacks, url_verification),
interactive ``block_actions`` payloads and ``chat.postMessage``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.connectors.servers import Recorder

TOKEN = "xoxb-test-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_USER = "U0BOT"
USER = "U0ANN"
DM = "D0DM"


class FakeSlackApi:
    """Records every ``chat.postMessage`` attempt; ``answers`` scripts the next ones' failures.

    ``posts`` holds each delivered body with the ``ts`` Slack gave the message.
    """

    def __init__(self) -> None:
        self.attempts = Recorder()  # {"at": monotonic seconds, "body": ...} for every call
        self.posts = Recorder()  # bodies of the calls that succeeded
        self.answers: list[tuple[int, dict[str, str]]] = []  # (status, headers), used up in order
        self.fail_always: int | None = None  # answer every call with this status
        self.hold: asyncio.Event | None = None  # successful answers wait for it when set
        self._ts = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/api/chat.postMessage", self.post_message)

    async def post_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.attempts.add({"at": time.monotonic(), "body": body})
        headers: dict[str, str] = {}
        status = self.fail_always or 200
        if self.answers:
            status, headers = self.answers.pop(0)
        if status != 200:
            error = "ratelimited" if status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self.hold is not None:
            await self.hold.wait()
        ts = f"1700000000.{next(self._ts):06d}"
        await self.posts.add({**body, "ts": ts})
        message = {"type": "message", "subtype": "bot_message", "bot_id": "B0BOT", "ts": ts}
        message.update({k: body[k] for k in ("text", "blocks", "thread_ts") if k in body})
        return web.json_response(
            {"ok": True, "channel": body["channel"], "ts": ts, "message": message}
        )


_event_ids = itertools.count(1)
_message_ts = itertools.count(1)


def next_ts() -> str:
    return f"1710000000.{next(_message_ts):06d}"


def event_callback(
    text: str,
    *,
    user: str = USER,
    channel: str = DM,
    kind: str = "message",
    ts: str | None = None,
    event_id: str | None = None,
    **event: Any,
) -> dict[str, Any]:
    """An ``event_callback`` envelope as Slack posts it for a message (or an app_mention)."""
    ts = ts or next_ts()
    body: dict[str, Any] = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel}
    body["event_ts"] = ts
    if kind == "message":
        body["channel_type"] = "im" if channel.startswith("D") else "channel"
        body["client_msg_id"] = f"c0ffee00-{ts}"
    body.update(event)
    return {
        "token": "verification-token",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "event": body,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0TEAM",
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def block_actions(post: dict[str, Any], title: str, *, user: str = USER) -> dict[str, Any]:
    """The interactive payload of a click on the button ``title`` of a message the bot posted."""
    ts = post.get("ts", next_ts())
    buttons = [
        element
        for block in post["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    button = next(b for b in buttons if b["text"]["text"] == title)
    action_ts = f"{time.time():.6f}"
    message = {"type": "message", "user": BOT_USER, "ts": ts, "text": post["text"]}
    message.update({"blocks": post["blocks"], "bot_id": "B0BOT"})
    if "thread_ts" in post:
        message["thread_ts"] = post["thread_ts"]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "ann", "name": "ann", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": post["channel"],
            "is_ephemeral": False,
        },
        "trigger_id": f"{action_ts}.1234.abcdef",
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": post["channel"], "name": "directmessage"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "actions0",
                "text": button["text"],
                "value": button["value"],
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }


def signed(
    body: bytes,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers Slack sends with ``body``: its timestamp and ``v0`` signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
    }


def event_body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()
