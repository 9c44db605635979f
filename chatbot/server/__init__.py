"""The aiohttp server of ``chatbot run``.

``app`` (the factory and ``serve``), ``settings``, ``gate`` (where user messages enter: limits,
metrics, logs), ``api`` and ``api_model`` (the HTTP API), ``model_pull`` (the model from a model
server, endpoints.yml ``models:``), ``auth``, ``limits``, ``errors``
(errors to HTTP answers, in one place), ``health``, ``metrics``, ``cors``, ``bodies`` (reading
JSON) and ``keys`` (the application's typed state).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatbot.server.app import build_agent, create_app, serve
    from chatbot.server.keys import AGENT, GATE
    from chatbot.server.settings import RateLimit, ServerSettings

__all__ = ["AGENT", "GATE", "RateLimit", "ServerSettings", "build_agent", "create_app", "serve"]

# Each name from its module when first asked for: a command that only reads the settings
# (`chatbot train`, `data validate`, ... import ``chatbot.server.settings`` through the CLI's
# options) does not import aiohttp, SQLAlchemy and the agent (about a second here).
_HOME = {
    "build_agent": "app",
    "create_app": "app",
    "serve": "app",
    "AGENT": "keys",
    "GATE": "keys",
    "RateLimit": "settings",
    "ServerSettings": "settings",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
