"""Limits on what one client can ask: message length, and a rate per sender and, where it is set,
per client address (token buckets)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from chatbot.errors import ChatbotError
from chatbot.server.settings import RateLimit

# Buckets kept at most; the least recently seen sender's bucket goes first (it starts full again).
DEFAULT_MAX_SENDERS = 100_000


class RateLimited(ChatbotError):
    """A sender sent more messages than the rate limit allows; ``retry_after`` in seconds."""

    what = "too many messages"

    def __init__(self, sender_id: str, retry_after: float) -> None:
        self.sender_id = sender_id
        self.retry_after = retry_after
        super().__init__(f"{self.what}; try again in {retry_after:.1f} s")


class ClientRateLimited(RateLimited):
    """One client address sent more messages than ``--client-rate-limit`` allows, whatever
    senders it named."""

    what = "too many messages from this address"


class Overloaded(ChatbotError):
    """The server already has ``limit`` messages in progress: this one is refused at once (a
    503 with Retry-After) instead of queueing behind them for longer than its client waits."""

    retry_after = 1.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the server is busy with {limit} messages; try again shortly")


class MessageTooLong(ChatbotError):
    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"the message has {length} characters, more than the {limit} allowed")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One token bucket per sender: ``limit.count`` tokens at most, refilled at
    ``limit.per_second``; a message takes a token."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_senders: int = DEFAULT_MAX_SENDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.max_senders = max_senders
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, sender_id: str) -> float:
        """0.0 when ``sender_id`` may send now (a token is taken), else the seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(sender_id)
        if bucket is None:
            bucket = _Bucket(float(self.limit.count), now)
            self._buckets[sender_id] = bucket
            if len(self._buckets) > self.max_senders:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(sender_id)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(
                float(self.limit.count), bucket.tokens + elapsed * self.limit.per_second
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.limit.per_second

    def check(self, sender_id: str) -> None:
        """Take a token for ``sender_id`` or raise RateLimited."""
        wait = self.take(sender_id)
        if wait > 0.0:
            raise RateLimited(sender_id, wait)

    def check_client(self, client: str, sender_id: str) -> None:
        """Take a token for the address ``client`` or raise ClientRateLimited."""
        wait = self.take(client)
        if wait > 0.0:
            raise ClientRateLimited(sender_id, wait)


def check_text_length(text: str, limit: int) -> None:
    if len(text) > limit:
        raise MessageTooLong(len(text), limit)
