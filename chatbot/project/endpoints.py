"""endpoints.yml and credentials.yml: where actions, stores and locks live; channel secrets.

Each block is kept as written (a dict) with its origin; the part that uses a block (the action
client, the store factory, a connector) validates its keys and names the file and line on error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatbot.project.domain import NO_ORIGIN, Origin


@dataclass(frozen=True)
class EndpointBlock:
    """One top-level block, e.g. ``action_endpoint: {url: ...}`` or
    ``tracker_store: {type: sql}``."""

    name: str
    params: dict[str, Any]
    origin: Origin = NO_ORIGIN

    @property
    def type(self) -> str | None:
        value = self.params.get("type")
        return str(value) if value is not None else None


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
