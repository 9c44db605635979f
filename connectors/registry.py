"""The channels ``chatbot run`` can mount, by their credentials.yml name (an explicit table)."""

from __future__ import annotations

from connectors.base import InputChannel
from connectors.callback import CallbackChannel
from connectors.rest import RestChannel
from connectors.socketio import SocketIOChannel

CHANNELS: dict[str, type[InputChannel]] = {
    "rest": RestChannel,
    "socketio": SocketIOChannel,
    "callback": CallbackChannel,
}
