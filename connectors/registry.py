"""The channels ``chatbot run`` can mount, by their credentials.yml name (an explicit table).

A channel's module is imported only when a credentials.yml block mounts it, so a bot served on the
REST channel alone does not pay for Slack's, Telegram's or socket.io's imports at start.
"""

from __future__ import annotations

from importlib import import_module

from connectors.base import InputChannel

CHANNELS: dict[str, str] = {
    "rest": "connectors.rest:RestChannel",
    "socketio": "connectors.socketio:SocketIOChannel",
    "slack": "connectors.slack:SlackChannel",
    "telegram": "connectors.telegram:TelegramChannel",
    "callback": "connectors.callback:CallbackChannel",
}


def channel_class(name: str) -> type[InputChannel] | None:
    """The channel class of a credentials.yml block name; None for a name not in ``CHANNELS``."""
    where = CHANNELS.get(name)
    if where is None:
        return None
    module, _, attribute = where.partition(":")
    found: type[InputChannel] = getattr(import_module(module), attribute)
    return found
