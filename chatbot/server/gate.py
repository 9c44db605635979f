"""Where every user message enters the bot: limits first, then the turn, measured and logged.

Channels call ``gate.handle(message)`` (or ``gate.admit`` when they answer the client before the
turn runs, as the callback channel does). Logs at INFO carry the conversation id, the channel, the
number of events and the time, never the user's text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.processor import TurnResult
from chatbot.server.clients import TrustedProxies, request_client
from chatbot.server.limits import Overloaded, RateLimited, RateLimiter, check_text_length
from chatbot.server.metrics import Metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MessageGate:
    def __init__(
        self,
        agent_getter: Callable[[], Agent],
        metrics: Metrics,
        *,
        limiter: RateLimiter | None = None,
        client_limiter: RateLimiter | None = None,
        proxies: TrustedProxies | None = None,
        max_message_chars: int = 10_000,
        max_in_flight: int | None = None,
    ) -> None:
        self.agent_getter = agent_getter
        self.metrics = metrics
        self.limiter = limiter
        # Per client address (``--client-rate-limit``), the address read as ``proxies`` say.
        self.client_limiter = client_limiter
        self.proxies = proxies or TrustedProxies()
        self.max_message_chars = max_message_chars
        # Turns in progress at most (None: no limit); one more is refused with Overloaded.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        metrics.watch_in_flight(lambda: self.in_flight)

    def admit(self, sender_id: str, text: str | None = None, client: str | None = None) -> None:
        """Raise MessageTooLong or RateLimited unless ``sender_id`` may send ``text`` now, and
        the address ``client`` (where the channel knows it) may send another message."""
        if text is not None:
            check_text_length(text, self.max_message_chars)
        try:
            if self.client_limiter is not None and client:
                self.client_limiter.check_client(client, sender_id)
            if self.limiter is not None:
                self.limiter.check(sender_id)
        except RateLimited:
            self.metrics.rate_limited.inc()
            raise

    def client_of(self, request: web.Request) -> str | None:
        """The address ``request`` comes from, as the per-client limit counts it (None where
        there is no such limit: nothing counts it)."""
        if self.client_limiter is None:
            return None
        return request_client(request, self.proxies)

    async def handle(
        self, message: UserMessage, *, admitted: bool = False, client: str | None = None
    ) -> list[dict[str, Any]]:
        """The bot's answer to ``message`` (Rasa's REST channel messages); ``client``: the
        address it came from, where the channel answers that client directly."""
        if not admitted:
            self.admit(message.sender_id, message.text, client)
        result = await self.turn(
            message.input_channel or "unknown",
            message.sender_id,
            lambda: self.agent_getter().processor.handle(message),
        )
        return result.messages()

    async def turn(
        self, channel: str, conversation_id: str, run: Callable[[], Awaitable[TurnResult]]
    ) -> TurnResult:
        """Run one turn of a conversation (a message, a triggered intent, an executed action),
        counting it and timing it."""
        started = time.perf_counter()
        label = self.metrics.channel_label(channel)
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            self.metrics.overloaded.inc()  # the refusal is logged where it is answered
            raise Overloaded(self.max_in_flight)
        self.in_flight += 1
        try:
            result = await run()
        except Exception as exc:
            seconds = time.perf_counter() - started
            self.metrics.messages.labels(label, "error").inc()
            self.metrics.errors.labels(type(exc).__name__).inc()
            logger.info(
                "turn failed conversation=%s channel=%s error=%s seconds=%.3f",
                conversation_id,
                channel,
                type(exc).__name__,
                seconds,
            )
            raise
        finally:
            self.in_flight -= 1
        seconds = time.perf_counter() - started
        self.metrics.messages.labels(label, "ok").inc()
        self.metrics.message_seconds.labels(label).observe(seconds)
        logger.info(
            "turn conversation=%s channel=%s events=%d seconds=%.3f",
            conversation_id,
            channel,
            len(result.new_events),
            seconds,
        )
        return result
