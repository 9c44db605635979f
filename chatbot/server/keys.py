"""The typed keys of the server's application state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.server.auth import Auth
from chatbot.server.gate import MessageGate
from chatbot.server.metrics import Metrics
from chatbot.server.settings import ServerSettings
from chatbot.server.worker_sync import WorkerSync

AGENT = web.AppKey("agent", Agent)
SETTINGS = web.AppKey("settings", ServerSettings)
METRICS = web.AppKey("metrics", Metrics)
GATE = web.AppKey("gate", MessageGate)
AUTH = web.AppKey("auth", Auth)
# Under ``chatbot run --workers``: this worker's side of what the workers share.
WORKER_SYNC = web.AppKey("worker_sync", WorkerSync)

# Where clients reach each mounted channel, as the ready line of ``chatbot run`` names it.
ENTRIES = web.AppKey("entries", list[str])

# Sends bot messages to a conversation outside any request of its user (reminders, external
# events with ``output_channel``): (conversation id, messages, metadata of its latest user message).
Sender = Callable[[str, list[dict[str, Any]], dict[str, Any]], Awaitable[None]]
# The mounted channels that can do that, by name (callback, socketio, slack, telegram; not rest,
# whose answer is its HTTP response).
OUTPUTS = web.AppKey("outputs", dict[str, Sender])
