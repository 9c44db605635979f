"""A fake Telegram Bot API on 127.0.0.1 and the updates Telegram posts to a webhook.

Shapes follow the Bot API's documentation: ``Update``, ``Message``, ``CallbackQuery``, and the
``{"ok", "result"}`` / ``{"ok": false, "error_code", "description", "parameters"}`` answers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from aiohttp import web

from tests.connectors.servers import Recorder

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "webhook-secret_0123456789"
CHAT = 4242
BOT = {"id": 777, "is_bot": True, "first_name": "Restaurant", "username": "restaurant_bot"}
ANN = {"id": CHAT, "is_bot": False, "first_name": "Ann", "username": "ann", "language_code": "en"}


class FakeTelegramApi:
    """Records every call as ``{"method", "params", "at"}``; ``answers`` scripts failures."""

    def __init__(self) -> None:
        self.attempts = Recorder()  # every call, failed ones included
        self.calls = Recorder()  # calls that succeeded, with the message they made
        self.answers: list[tuple[int, dict[str, Any]]] = []  # (status, body), used up in order
        self.fail_always: int | None = None
        self.hold: asyncio.Event | None = None  # successful answers wait for it when set
        self._message_ids = itertools.count(1000)
        self.app = web.Application()
        self.app.router.add_post("/bot{token}/{method}", self.call)

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [c for c in self.calls.items if c["method"] == method]

    async def call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await request.json()
        await self.attempts.add({"method": method, "params": params, "at": time.monotonic()})
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if self.answers or self.fail_always:
            status, body = self.answers.pop(0) if self.answers else (self.fail_always, {})
            assert status is not None
            return web.json_response({"ok": False, "error_code": status, **body}, status=status)
        if self.hold is not None:
            await self.hold.wait()
        result: Any = True
        if method.startswith("send"):
            result = {
                "message_id": next(self._message_ids),
                "from": BOT,
                "chat": {"id": params["chat_id"], "type": "private"},
                "date": int(time.time()),
                **{k: v for k, v in params.items() if k in ("text", "reply_markup")},
            }
        await self.calls.add({"method": method, "params": params, "result": result})
        return web.json_response({"ok": True, "result": result})


_update_ids = itertools.count(500_000)
_message_ids = itertools.count(1)


def message_update(text: str, *, chat: int = CHAT, update_id: int | None = None) -> dict[str, Any]:
    """An update with a user's text message in a private chat."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "from": {**ANN, "id": chat},
        "chat": {"id": chat, "first_name": "Ann", "username": "ann", "type": "private"},
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0].split("{")[0]
        message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return {"update_id": update_id or next(_update_ids), "message": message}


def callback_update(sent: dict[str, Any], title: str) -> dict[str, Any]:
    """An update for a click on the inline button ``title`` of a message the bot sent."""
    message = sent["result"]
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    button = next(b for b in buttons if b["text"] == title)
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": f"{next(_update_ids)}4382bfdwdsb323b2d9",
            "from": ANN,
            "message": message,
            "chat_instance": "-5462235213741548193",
            "data": button["callback_data"],
        },
    }


async def wait_calls(api: FakeTelegramApi, method: str, count: int) -> list[dict[str, Any]]:
    await api.calls.wait_for(lambda calls: sum(c["method"] == method for c in calls) >= count)
    return api.sent(method)
