"""endpoints.yml and credentials.yml: where actions, stores and locks live; channel secrets.

Each block is kept as written (a dict) with its origin; the part that uses a block (the action
client, the store factory, a connector) validates its keys and names the file and line on error.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatbot.errors import ConfigError
from chatbot.project.domain import NO_ORIGIN, Origin

logger = logging.getLogger(__name__)


def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a URL a client can request ("is not a valid URL (...)",
    "names no host"); None when nothing does. The scheme is the caller's to check."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is no number or out of range raises)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if not parts.hostname:
        return "names no host"
    return None


@dataclass(frozen=True)
class EndpointBlock:
    """One top-level block, e.g. ``action_endpoint: {url: ...}`` or
    ``tracker_store: {type: sql}``."""

    name: str
    params: dict[str, Any]
    origin: Origin = NO_ORIGIN

    @property
    def type(self) -> str | None:
        """``type``, or Rasa's other name for it, ``store_type`` (which wins, as in Rasa); a
        class of Rasa's own named by its module path (``rasa.core.tracker_store.SQLTrackerStore``)
        is its class name."""
        value = self.params.get("store_type", self.params.get("type"))
        if value is None:
            return None
        text = str(value)
        return text.rsplit(".", 1)[-1] if text.startswith("rasa.") else text

    # What Rasa's endpoint blocks share (its EndpointConfig), read the same way by every block
    # that takes them; a mistake is a ConfigError naming the file, the line and the key.

    def warn_unknown_keys(self, known: Collection[str]) -> None:
        """One warning line naming the keys outside ``known`` (Rasa ignores them too)."""
        unknown = sorted(set(self.params) - set(known) - {"store_type"})
        if unknown:
            logger.warning(
                "%s%s: ignoring unknown keys %s", self.origin.prefix, self.name, ", ".join(unknown)
            )

    def mapping(self, key: str) -> dict[str, Any]:
        """The mapping under ``key`` ({} when absent)."""
        value = self.params.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{self.origin.prefix}{self.name}: '{key}' must be a mapping, not {value!r}"
            )
        return value

    def query(self) -> dict[str, str]:
        """The query of every request: ``params``, with ``token`` under ``token_name``."""
        query = {str(k): str(v) for k, v in self.mapping("params").items()}
        if self.params.get("token"):
            query[str(self.params.get("token_name") or "token")] = str(self.params["token"])
        return query

    def headers(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.mapping("headers").items()}

    def basic_auth(self) -> tuple[str, str] | None:
        """``basic_auth: {username, password}``; None without one."""
        auth = self.mapping("basic_auth")
        if not auth:
            return None
        if "username" not in auth or "password" not in auth:
            raise ConfigError(
                f"{self.origin.prefix}{self.name}: 'basic_auth' needs 'username' and 'password'"
            )
        return str(auth["username"]), str(auth["password"])

    def request_headers(self) -> dict[str, str]:
        """``headers``, with ``basic_auth`` as its ``Authorization`` header."""
        headers = self.headers()
        auth = self.basic_auth()
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        return headers


@dataclass(frozen=True)
class Endpoints:
    blocks: dict[str, EndpointBlock] = field(default_factory=dict)
    file: str | None = None

    def get(self, name: str) -> EndpointBlock | None:
        return self.blocks.get(name)

    @property
    def action_endpoint(self) -> EndpointBlock | None:
        return self.blocks.get("action_endpoint")

    @property
    def tracker_store(self) -> EndpointBlock | None:
        return self.blocks.get("tracker_store")

    @property
    def lock_store(self) -> EndpointBlock | None:
        return self.blocks.get("lock_store")

    def not_used(self) -> list[tuple[EndpointBlock, str]]:
        """The blocks ``chatbot run`` does not use, each with why (Rasa reads them)."""
        return [
            (block, UNUSED_BLOCKS.get(name, "not an endpoints.yml block we know"))
            for name, block in self.blocks.items()
            if name not in USED_BLOCKS
        ]


USED_BLOCKS = frozenset(
    {"action_endpoint", "tracker_store", "lock_store", "nlg", "event_broker", "models"}
)
# Rasa's other endpoints.yml blocks, and what happens instead (none today).
UNUSED_BLOCKS: dict[str, str] = {}


@dataclass(frozen=True)
class Credentials:
    """credentials.yml: channel name (``rest``, ``socketio``, ``slack``, ``telegram``, ...) ->
    its keys."""

    channels: dict[str, EndpointBlock] = field(default_factory=dict)
    file: str | None = None
