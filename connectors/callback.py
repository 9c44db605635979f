"""Rasa's callback channel: ``POST /webhooks/callback/webhook`` with the REST channel's body is
answered at once (``success``); the bot's messages are then POSTed, one by one, as JSON to the URL
of credentials.yml::

    callback:
      url: "http://localhost:5034/bot"
      timeout: 10          # seconds to post one message (default 10)
      max_pending: 1000    # messages accepted and not yet answered, at most
      # and Rasa's endpoint keys, sent with every post: headers, params, token (token_name),
      # basic_auth: {username, password}

Messages of one conversation are handled and delivered in the order they arrived. At most
``max_pending`` messages wait at a time (more are refused with a 503); on shutdown the server
finishes them before it closes the store. When the bot cannot answer (its database is gone), the
user gets a short apology instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage, collected
from chatbot.errors import ChatbotError, ConfigError
from chatbot.project.endpoints import EndpointBlock, url_problem
from chatbot.server.errors import apology_messages, failure_of
from chatbot.server.errors import json_error as _json_error
from chatbot.server.keys import GATE, OUTPUTS
from chatbot.server.limits import MessageTooLong, RateLimited
from connectors.base import InputChannel
from connectors.rest import read_user_message

logger = logging.getLogger(__name__)

_KEYS = frozenset(
    {"url", "timeout", "max_pending", "params", "headers", "token", "token_name", "basic_auth"}
)
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_PENDING = 1000
# Seconds that shutdown waits for messages still being handled or delivered.
DEFAULT_DRAIN_SECONDS = 30.0


class CallbackChannel(InputChannel):
    name = "callback"
    known_keys = _KEYS

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        # Rasa's EndpointConfig keys: the query and headers (basic auth) of every post.
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_pending = max_pending
        self.drain_seconds = drain_seconds
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()
        # The newest task of each conversation: the next one waits for it.
        self._tails: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> CallbackChannel:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"callback: 'url' must be the http(s) URL the bot's messages are posted to, "
                f"not {url!r}"
            )
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(f"callback: 'url' {url!r} {problem}")
        timeout = params.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"callback: 'timeout' must be a positive number, not {timeout!r}")
        max_pending = params.get("max_pending", DEFAULT_MAX_PENDING)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError(
                f"callback: 'max_pending' must be a positive whole number, not {max_pending!r}"
            )
        block = EndpointBlock("callback", params)
        return cls(
            url,
            timeout=float(timeout),
            max_pending=max_pending,
            params=block.query(),
            headers=block.request_headers(),
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        app.router.add_get(f"/webhooks/{self.name}/", self.health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", self.webhook)
        app.cleanup_ctx.append(self._lifecycle)
        app[OUTPUTS][self.name] = self.send

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): POSTed to ``url`` as answers are."""
        for message in messages:
            await self._deliver(message)

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            yield
        finally:
            await self.drain()
            await self._session.close()

    async def drain(self) -> None:
        """Wait for the messages in hand (at most ``drain_seconds``), then cancel the rest."""
        if not self._pending:
            return
        logger.info("callback: finishing %d message(s) before shutdown", len(self._pending))
        _, late = await asyncio.wait(set(self._pending), timeout=self.drain_seconds)
        for task in late:
            task.cancel()
        if late:
            logger.error("callback: %d message(s) cancelled at shutdown", len(late))
            await asyncio.wait(late)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def webhook(self, request: web.Request) -> web.Response:
        message = await read_user_message(request, self.name)
        gate = request.app[GATE]
        gate.admit(message.sender_id, message.text, gate.client_of(request))  # 413 / 429 first
        if len(self._pending) >= self.max_pending:
            raise _json_error(
                503,
                "too many messages are waiting; try again shortly",
                headers={"Retry-After": "1"},
            )
        previous = self._tails.get(message.sender_id)
        task = asyncio.create_task(self._process(message, gate.handle, previous))
        self._pending.add(task)
        self._tails[message.sender_id] = task
        task.add_done_callback(lambda t: self._done(message.sender_id, t))
        return web.Response(text="success")

    def _done(self, sender_id: str, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if self._tails.get(sender_id) is task:
            del self._tails[sender_id]

    async def _process(
        self, message: UserMessage, handle: Any, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # in order; its failure is its own
        try:
            messages = await handle(message, admitted=True)
        except (RateLimited, MessageTooLong):  # pragma: no cover - admitted above
            return
        except ChatbotError as exc:
            failure = failure_of(exc)
            logger.error("callback: conversation %s: %s", message.sender_id, exc)
            messages = apology_messages(message.sender_id) if failure.apology else []
        except Exception:
            logger.exception("callback: conversation %s: the turn failed", message.sender_id)
            messages = apology_messages(message.sender_id)
        for bot_message in collected(messages):  # Rasa's CallbackOutput is a collector
            await self._deliver(bot_message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        assert self._session is not None, "the callback channel's application is not running"
        try:
            async with self._session.post(
                self.url,
                json=message,
                params=self.params,
                headers=self.headers,
            ) as response:
                if response.status >= 300:
                    logger.error(
                        "callback: %s answered %d to a bot message", self.url, response.status
                    )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            logger.error("callback: cannot post a bot message to %s (%s)", self.url, exc)
