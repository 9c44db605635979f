"""The channels ``chatbot run`` can mount, by their credentials.yml name (an explicit table)."""

from __future__ import annotations

from connectors.base import InputChannel
from connectors.callback import CallbackChannel
from connectors.rest import RestChannel
from connectors.slack import SlackChannel
from connectors.socketio import SocketIOChannel
from connectors.telegram import TelegramChannel

CHANNELS: dict[str, type[InputChannel]] = {
    "rest": RestChannel,
    "socketio": SocketIOChannel,
    "slack": SlackChannel,
    "telegram": TelegramChannel,
    "callback": CallbackChannel,
}
