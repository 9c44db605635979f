"""The channel interface: a channel mounts its webhook routes on the server's application.

A channel hands each user message to the server's gate, ``request.app[GATE].handle(message)``
(``chatbot.server.keys.GATE``): it applies the message-length and per-sender rate limits, counts
and times the turn for ``/metrics`` and logs it without the user's text. When the bot cannot
answer (``chatbot.server.errors.failure_of(exc).apology``: the store is down, the conversation is
busy), the channel sends ``chatbot.server.errors.APOLOGY`` to the user instead of staying silent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from aiohttp import web


class InputChannel(ABC):
    """One extension point per channel: REST, callback, socket.io, Slack, Telegram."""

    name: str

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> InputChannel:
        """The channel from its credentials.yml block; a bad setting is a ConfigError (the
        server adds the file and line)."""
        return cls()

    @abstractmethod
    def register(self, app: web.Application, agent_getter: Any) -> None:
        """Add this channel's routes under ``/webhooks/<name>/``."""


def json_object(value: Any) -> dict[str, Any]:
    """``value`` where it is a JSON object, else an empty one: a platform's payload read without
    trusting its shape."""
    return value if isinstance(value, dict) else {}
