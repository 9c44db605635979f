"""A stand-in for a Duckling server on 127.0.0.1 that speaks its HTTP API (``POST /parse`` with
form fields ``text``, ``locale``, ``tz``, ``dims``, ``reftime``) and answers in its format, for a
few expressions: digits and number words (``number``), "tomorrow" (``time``, a day), "this
weekend" (``time``, an interval). It keeps every request's form, and can be told to fail."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestServer

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


@dataclass
class FakeDuckling:
    requests: list[dict[str, str]] = field(default_factory=list)
    # None: answer; "error": a 500; "slow": answer after `delay` s; or this exact body.
    fault: str | None = None
    delay: float = 0.0
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/parse", self._parse)
        app.router.add_get("/", self._root)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _root(self, request: web.Request) -> web.Response:
        """Duckling's own answer on its root."""
        if self.fault == "error":
            return web.Response(status=500, text="Internal Server Error")
        return web.Response(text="quack!")

    async def _parse(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append({k: str(v) for k, v in form.items()})
        if self.fault == "error":
            return web.Response(status=500, text="Internal Server Error")
        if self.fault == "slow":
            await asyncio.sleep(self.delay)
        elif self.fault is not None:
            return web.Response(text=self.fault, content_type="application/json")
        text = str(form["text"])
        zone = ZoneInfo(str(form.get("tz") or "UTC"))
        now = datetime.fromtimestamp(int(str(form["reftime"])) / 1000, zone)
        dims = json.loads(str(form["dims"])) if "dims" in form else None
        matches = [*_numbers(text), *_times(text, now)]
        matches = [m for m in matches if dims is None or m["dim"] in dims]
        return web.json_response(matches)


def _numbers(text: str) -> list[dict[str, Any]]:
    found = []
    for m in _NUMBER.finditer(text):
        word = m.group(1).lower()
        value: float = _NUMBER_WORDS[word] if word in _NUMBER_WORDS else float(word)
        found.append(
            {
                "body": m.group(1),
                "start": m.start(),
                "end": m.end(),
                "dim": "number",
                "latent": False,
                "value": {"value": int(value) if value == int(value) else value, "type": "value"},
            }
        )
    return found


def _stamp(moment: datetime) -> str:
    """Duckling's time format: 2017-06-01T00:00:00.000-07:00."""
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.000")
        + moment.strftime("%z")[:3]
        + ":"
        + (moment.strftime("%z")[3:])
    )


def _times(text: str, now: datetime) -> list[dict[str, Any]]:
    found = []
    lower = text.lower()
    start = lower.find("tomorrow")
    if start >= 0:
        day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        value = {"value": _stamp(day), "grain": "day", "type": "value"}
        found.append(
            {
                "body": text[start : start + 8],
                "start": start,
                "end": start + 8,
                "dim": "time",
                "latent": False,
                "value": {"values": [value], **value},
            }
        )
    start = lower.find("this weekend")
    if start >= 0:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        friday = midnight + timedelta(days=(4 - now.weekday()) % 7, hours=18)
        monday = friday + timedelta(hours=54)  # Friday 18:00 to Monday 00:00
        interval = {
            "to": {"value": _stamp(monday), "grain": "hour"},
            "from": {"value": _stamp(friday), "grain": "hour"},
            "type": "interval",
        }
        found.append(
            {
                "body": text[start : start + 12],
                "start": start,
                "end": start + 12,
                "dim": "time",
                "latent": False,
                "value": {"values": [interval], **interval},
            }
        )
    return found
