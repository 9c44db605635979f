"""Reading JSON that comes from outside the process: HTTP bodies, channel webhooks, action server
answers, the entities of a ``/intent{...}`` message.

Python's ``json.loads`` reads more than JSON: ``NaN``, ``Infinity`` and ``-Infinity``, which no
JSON parser elsewhere (a browser, PostgreSQL) accepts back, so a value holding one could be stored
and then break every answer that sends it; and JSON nested deeper than Python's recursion limit
raises ``RecursionError``, which handlers of malformed input do not expect. ``loads`` makes both a
``ValueError``, as any malformed JSON is; so are numbers beyond a float's range (``1e999``, an
integer of 400 digits), which would be infinity or overflow ``float()``.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any


class NotJSON(ValueError):
    """Text that is not JSON as every parser reads it; ``str()`` says why."""


class TooDeep(NotJSON):
    """JSON nested deeper than Python's recursion limit lets it be read."""


def _refuse_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    # ``1e999`` is JSON, but Python reads it as infinity, which it would then write back as
    # ``Infinity``: a number out of a float's range is refused as the constants are.
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise NotJSON(f"{shown} is beyond the range of a number")
    return value


def _int_in_range(text: str) -> int:
    # An integer of more than 308 digits is beyond a float's range too: no JSON parser that
    # reads numbers as doubles gets it back, and ``float()`` of it raises OverflowError wherever
    # the number is used as one (a confidence, a timestamp).
    value = int(text)
    if len(text) > 309:
        try:
            float(value)
        except OverflowError:
            raise NotJSON(f"{text[:21]}... is beyond the range of a number") from None
    return value


def loads(data: str | bytes | bytearray) -> Any:
    """The JSON value of ``data``; a ``ValueError`` (``NotJSON`` for the two cases above and
    for a number too large for a float, ``TooDeep`` for nesting, else
    ``json.JSONDecodeError``) when it is not JSON."""
    try:
        return json.loads(
            data,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_int_in_range,
        )
    except RecursionError:
        raise TooDeep("the JSON nests too deeply") from None


# For libraries that take a json module (python-socketio's ``json=``): reads with ``loads``,
# writes as the standard library does.
STRICT_JSON = SimpleNamespace(loads=loads, dumps=json.dumps)


def lone_surrogate_at(value: Any) -> str | None:
    """Where the first string (key or value) that is not Unicode text is in a decoded JSON
    value ("the request body", "'metadata' -> 'name'", "[2] -> 'text'"), or None."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not is_unicode_text(item):
                return " -> ".join(path) or "the request body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not is_unicode_text(key):
                    return " -> ".join((*path, "a key")) if path else "a key"
                stack.append((child, (*path, repr(key))))
        elif isinstance(item, list):
            stack.extend((child, (*path, f"[{i}]")) for i, child in enumerate(item))
    return None


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` is Unicode text: UTF-8 can encode it (it has no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
