"""The aiohttp server of ``chatbot run``.

``app`` (the factory and ``serve``), ``settings``, ``gate`` (where user messages enter: limits,
metrics, logs), ``api`` and ``api_model`` (the HTTP API), ``model_pull`` (the model from a model
server, endpoints.yml ``models:``), ``auth``, ``limits``, ``errors``
(errors to HTTP answers, in one place), ``health``, ``metrics``, ``cors``, ``bodies`` (reading
JSON) and ``keys`` (the application's typed state).
"""

from chatbot.server.app import build_agent, create_app, serve
from chatbot.server.keys import AGENT, GATE
from chatbot.server.settings import RateLimit, ServerSettings

__all__ = ["AGENT", "GATE", "RateLimit", "ServerSettings", "build_agent", "create_app", "serve"]
