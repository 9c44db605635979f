"""The channel interface: a channel mounts its webhook routes on the server's application."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from aiohttp import web


class InputChannel(ABC):
    """One extension point per channel: REST, callback, socket.io, Slack, Telegram."""

    name: str

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> InputChannel:
        return cls()

    @abstractmethod
    def register(self, app: web.Application, agent_getter: Any) -> None:
        """Add this channel's routes under ``/webhooks/<name>/``."""
