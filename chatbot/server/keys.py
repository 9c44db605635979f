"""The typed keys of the server's application state."""

from __future__ import annotations

from aiohttp import web

from chatbot.agent import Agent
from chatbot.server.auth import Auth
from chatbot.server.gate import MessageGate
from chatbot.server.metrics import Metrics
from chatbot.server.settings import ServerSettings

AGENT = web.AppKey("agent", Agent)
SETTINGS = web.AppKey("settings", ServerSettings)
METRICS = web.AppKey("metrics", Metrics)
GATE = web.AppKey("gate", MessageGate)
AUTH = web.AppKey("auth", Auth)
