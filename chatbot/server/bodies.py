"""Reading JSON request bodies: every mistake is a 400 (or 413) naming what is wrong."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from chatbot.json_input import NotJSON, TooDeep, kind, loads, lone_surrogate_at
from chatbot.server.errors import json_error
from chatbot.server.keys import SETTINGS
from chatbot.server.settings import DEFAULT_BODY_TIMEOUT

# What a lone surrogate can come from: a \ud800-\udfff escape, or those code points written
# out in UTF-8 (which Python's JSON decoder lets through). Only a body with one is searched.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


async def read_body(request: web.Request) -> bytes:
    """The whole body; a 408 (the connection closed) when it has not arrived within the
    server's ``body_timeout``, a 413 past the body size limit."""
    if request.content.is_eof():  # it came with the headers, as a chat message does
        return await request.read()  # no deadline to set (wait_for costs a task a message)
    seconds = body_timeout(request)
    try:
        return await asyncio.wait_for(request.read(), seconds)
    except asyncio.TimeoutError:
        raise body_too_slow(seconds) from None


async def read_large_body(request: web.Request, limit: int, what: str) -> bytes:
    """A body larger than the server's usual limit may be (training or test data), up to
    ``limit`` bytes (a 413 naming ``what`` past it), read in chunks with the body deadline for
    each chunk (a 408 when one stalls): large data may take long in all, a stalled client not."""
    if request.content_length is not None and request.content_length > limit:
        raise json_error(413, f"the {what} is larger than {limit} bytes")
    seconds = body_timeout(request)
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.read(1 << 16), seconds)
        except asyncio.TimeoutError:
            raise body_too_slow(seconds) from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise json_error(413, f"the {what} is larger than {limit} bytes")
        chunks.append(chunk)


def body_timeout(request: web.Request) -> float:
    settings = request.app.get(SETTINGS)
    return settings.body_timeout if settings is not None else DEFAULT_BODY_TIMEOUT


def body_too_slow(seconds: float) -> web.HTTPException:
    return json_error(
        408,
        f"the request body did not arrive within {seconds:g} s",
        headers={"Connection": "close"},
    )


async def read_json(request: web.Request) -> Any:
    """The body as JSON (NaN and Infinity refused); raises 413 past the body size limit."""
    data = await read_body(request)
    if not data.strip():
        raise json_error(400, "the request body is empty; send a JSON document")
    try:
        body = loads(data)
    except TooDeep:
        raise json_error(400, "the request body's JSON nests too deeply") from None
    except NotJSON as exc:  # NaN, Infinity, a number beyond a float's range
        raise json_error(400, f"the request body is not valid JSON: {exc}") from None
    except ValueError:
        raise json_error(400, "the request body is not valid JSON") from None
    if _SURROGATE_HINT.search(data):
        where = lone_surrogate_at(body)
        if where is not None:
            raise json_error(
                400,
                f"{where} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
                "which is not Unicode text",
            )
    return body


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise json_error(400, f"the request body must be a JSON object, not {kind(body)}")
    return body


def string_field(
    body: dict[str, Any], key: str, *, required: bool = True, default: str | None = None
) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise json_error(400, f"'{key}' is missing; it is a string")
        return default
    if not isinstance(value, str):
        raise json_error(400, f"'{key}' must be a string, not {kind(value)}")
    return value


def object_field(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise json_error(400, f"'{key}' must be an object, not {kind(value)}")
    return value
