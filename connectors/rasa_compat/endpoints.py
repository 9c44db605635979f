"""``rasa.utils.endpoints``'s request helpers that connectors use."""

from __future__ import annotations

from typing import Any


def bool_arg(request: Any, name: str, default: bool = True) -> bool:
    """Whether the query parameter ``name`` is ``true`` (any case); ``default`` without it."""
    return str(request.args.get(name, default)).lower() == "true"


def default_arg(request: Any, key: str, default: Any = None) -> Any:
    """The query parameter ``key``, or ``default``."""
    return request.args.get(key, default)
