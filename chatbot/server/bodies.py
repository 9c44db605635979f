"""Reading JSON request bodies: every mistake is a 400 (or 413) naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from chatbot.server.errors import json_error


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request) -> Any:
    """The body as JSON (NaN and Infinity refused); raises 413 past the body size limit."""
    data = await request.read()
    if not data.strip():
        raise json_error(400, "the request body is empty; send a JSON document")
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise json_error(400, "the request body is not valid JSON") from None


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


def kind(value: Any) -> str:
    """A JSON value's type in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
