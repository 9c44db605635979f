"""An NLG server (endpoints.yml ``nlg:``), as in Rasa: the bot's responses come from it.

::

    nlg:
      url: http://localhost:5056/nlg   # POSTed for every response the bot sends
      timeout: 5                       # seconds (default 5)
      token: secret                    # sent as ?token=secret; and headers, as action_endpoint

For each response (``utter_...``) an action sends, the server gets Rasa's request
``{"response", "template", "arguments", "tracker", "channel": {"name"}}`` and answers the message
to send (``{"text", "buttons", "image", "custom", ...}``). When it cannot answer (down, slow,
an error, not a message), the domain's own response is sent and the cause logged: a user is
never left without an answer because the NLG server failed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from chatbot.actions.base import bot_event, message_problem
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.errors import ConfigError
from chatbot.json_input import loads
from chatbot.project.endpoints import EndpointBlock

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
_KNOWN_KEYS = {"url", "type", "timeout", "token", "token_name", "headers", "params"}
# The channel name Rasa sends when a response is not for an input channel.
COLLECTOR = "collector"


class NLGClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self._session: aiohttp.ClientSession | None = None
        self.failures = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self.headers
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def generate(
        self,
        response: str,
        arguments: dict[str, Any],
        tracker: dict[str, Any],
        channel: str | None,
    ) -> dict[str, Any] | None:
        """The server's message for ``response``; None (logged) when it gives none."""
        body = {
            "response": response,
            "template": response,  # the name Rasa 2 servers read
            "arguments": arguments,
            "tracker": tracker,
            "channel": {"name": channel or COLLECTOR},
        }
        try:
            async with self._client().post(self.url, json=body, params=self.params) as answer:
                if answer.status != 200:
                    problem = f"answered {answer.status}"
                else:
                    message = await answer.json(loads=loads, content_type=None)
                    wrong = message_problem(message) if isinstance(message, dict) else None
                    if wrong is not None:
                        problem = f"answered a message that cannot be sent ({wrong})"
                    elif isinstance(message, dict) and any(
                        message.get(k) for k in ("text", "image", "buttons", "custom", "elements")
                    ):
                        return message
                    else:
                        problem = "answered no message"
        except asyncio.TimeoutError:
            problem = f"gave no answer within {self.timeout:g} s"
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            problem = f"cannot be reached ({exc})"
        self.failures += 1
        logger.error(
            "NLG server %s %s for %s; the domain's response is sent instead",
            self.url,
            problem,
            response,
        )
        return None

    async def render(
        self, events: list[Event], conversation: Conversation, channel: str | None
    ) -> list[Event]:
        """``events`` with each response's bot event as the NLG server words it."""
        if not any(_response_of(e) for e in events):
            return events
        tracker = conversation.as_tracker()
        out: list[Event] = []
        for event in events:
            response = _response_of(event)
            message = None
            if response is not None:
                message = await self.generate(response, {}, tracker, channel)
            if message is None:
                out.append(event)
                continue
            rendered = bot_event(message, response)
            rendered["timestamp"] = event.get("timestamp", rendered["timestamp"])
            out.append(rendered)
        return out


def _response_of(event: Event) -> str | None:
    if event.get("event") != "bot":
        return None
    response = (event.get("metadata") or {}).get("utter_action")
    # Responses only: a default action's own message (action_default_ask_affirmation's) is not
    # the NLG server's to word, as in Rasa.
    return response if isinstance(response, str) and response.startswith("utter_") else None


def create_nlg_client(block: EndpointBlock | None) -> NLGClient | None:
    """The client of endpoints.yml's ``nlg:`` block; None without one. A mistake in it is a
    ConfigError naming the file, the line and the key."""
    if block is None:
        return None
    where = block.origin.prefix
    params = block.params
    block.warn_unknown_keys(_KNOWN_KEYS)
    kind = params.get("type")
    if kind not in (None, "callback"):
        raise ConfigError(f"{where}nlg: type {kind!r} is not supported; use 'callback' (a url)")
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}nlg needs 'url' (an NLG server, http:// or https://), not {url!r}"
        )
    timeout = params.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}nlg: 'timeout' must be a positive number, not {timeout!r}")
    if not all(isinstance(params.get(key) or {}, dict) for key in ("headers", "params")):
        raise ConfigError(f"{where}nlg: 'headers' and 'params' must be mappings")
    return NLGClient(url, timeout=float(timeout), headers=block.headers(), params=block.query())
