"""Conversation locks: one holder at a time per conversation, served in the order they asked.

Every message of a conversation is handled under its lock (load -> predict -> append), so two
messages of one user are answered in the order they came. A lock store hands out *tickets*: each
``acquire`` takes the next ticket of the conversation and waits until every earlier ticket is
released (first come, first served, not whoever polls first).

A holder keeps the lock for at most ``lock_lifetime`` seconds; after that the next waiter takes
over, so a crashed or hung holder cannot block a conversation forever. A holder that outlives its
lifetime and then appends fails loudly with ``ConflictError`` (the store's unique seq), rather
than interleaving its events with the next holder's. A waiter gives up after ``wait_timeout``
seconds with ``chatbot.errors.LockTimeout``.

``InMemoryLockStore`` serves one process; ``chatbot.store.redis_lock.RedisLockStore`` serves
several processes that share a Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from types import TracebackType

from chatbot.errors import LockTimeout, StoreUnavailable

logger = logging.getLogger(__name__)

DEFAULT_LOCK_LIFETIME = 60.0
# Longer than a lifetime, so a message waits out a crashed holder before giving up.
DEFAULT_WAIT_TIMEOUT = 65.0

Ticket = Hashable


class ConversationLock:
    """``async with lock_store.lock(conversation_id):`` holds the conversation's lock."""

    def __init__(self, store: LockStore, conversation_id: str) -> None:
        self._store = store
        self.conversation_id = conversation_id
        self._ticket: Ticket | None = None

    async def __aenter__(self) -> ConversationLock:
        if self._ticket is not None:
            raise RuntimeError(f"the lock of conversation '{self.conversation_id}' is held already")
        self._ticket = await self._store.acquire(self.conversation_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is None:
            return
        try:
            await self._store.release(self.conversation_id, ticket)
        except StoreUnavailable as error:
            # The ticket runs out by itself after the lock's lifetime; the body's own outcome
            # (its exception, if any) is what the caller needs to see.
            logger.warning("could not release the lock of a conversation: %s", error)


class LockStore(ABC):
    """One extension point: where conversation locks live. An async context manager."""

    def lock(self, conversation_id: str) -> ConversationLock:
        return ConversationLock(self, conversation_id)

    @abstractmethod
    async def acquire(self, conversation_id: str) -> Ticket:
        """Wait for the conversation's lock (FIFO); the ticket to release it with.

        Raises ``LockTimeout`` after the store's ``wait_timeout``. Prefer ``lock()``.
        """

    @abstractmethod
    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        """Give the lock to the next ticket. Harmless for a ticket whose lifetime ran out."""

    @abstractmethod
    async def queue_length(self, conversation_id: str) -> int:
        """Holder and waiters of the conversation's lock (0 when nobody holds it)."""

    async def ping(self) -> bool:
        return True

    async def start(self) -> None:  # noqa: B027 - optional hook, in-process locks hold nothing
        """Check that the locks can be taken (a server's start): a StoreUnavailable naming the
        cause where they cannot, instead of every message failing later."""

    async def close(self) -> None:  # noqa: B027 - optional hook, in-process locks hold nothing
        """Release connections."""

    async def __aenter__(self) -> LockStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass
class _Queue:
    """One conversation's tickets, in order. ``tickets[0]`` is next to hold the lock; once it
    has claimed it (``holder``), it holds it until ``head_deadline``."""

    tickets: deque[int] = field(default_factory=deque)
    holder: int | None = None
    head_deadline: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class InMemoryLockStore(LockStore):
    """Locks for the conversations of one process. Idle conversations keep no state."""

    def __init__(
        self,
        *,
        lock_lifetime: float | None = DEFAULT_LOCK_LIFETIME,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> None:
        self.lock_lifetime = lock_lifetime
        self.wait_timeout = wait_timeout
        self._queues: dict[str, _Queue] = {}
        # Tickets are unique across conversations and time, so a late release of an expired
        # ticket can never release someone else's.
        self._tickets = itertools.count()

    @property
    def active_locks(self) -> int:
        """Conversations whose lock is held or waited for."""
        return len(self._queues)

    async def acquire(self, conversation_id: str) -> Ticket:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(conversation_id)
        if queue is None:
            queue = self._queues[conversation_id] = _Queue()
        ticket = next(self._tickets)
        queue.tickets.append(ticket)
        started = loop.time()
        give_up = started + self.wait_timeout
        try:
            while queue.tickets[0] != ticket:
                now = loop.time()
                head = queue.tickets[0]
                holding = head == queue.holder
                if holding and now >= queue.head_deadline:
                    queue.tickets.popleft()
                    queue.holder = None
                    queue.notify()
                    logger.warning(
                        "conversation %s: the lock's holder outlived its lifetime of %s s; "
                        "the next message takes over",
                        conversation_id,
                        self.lock_lifetime,
                    )
                    continue
                if now >= give_up:
                    raise LockTimeout(conversation_id, now - started)
                # A head that has not claimed the lock yet is a waiter about to wake up.
                until = min(queue.head_deadline, give_up) if holding else give_up
                changed = queue.changed
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), until - now)
        except BaseException:
            self._remove(conversation_id, queue, ticket)
            raise
        queue.holder = ticket
        queue.head_deadline = (
            loop.time() + self.lock_lifetime if self.lock_lifetime is not None else float("inf")
        )
        return ticket

    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        queue = self._queues.get(conversation_id)
        if queue is None or not self._remove(conversation_id, queue, ticket):
            logger.warning(
                "conversation %s: lock released after its lifetime of %s s ran out; another "
                "message may have been handled meanwhile",
                conversation_id,
                self.lock_lifetime,
            )

    def _remove(self, conversation_id: str, queue: _Queue, ticket: Ticket) -> bool:
        if ticket not in queue.tickets:
            return False
        queue.tickets.remove(ticket)  # type: ignore[arg-type]
        if queue.holder == ticket:
            queue.holder = None
        queue.notify()
        if not queue.tickets and self._queues.get(conversation_id) is queue:
            del self._queues[conversation_id]
        return True

    async def queue_length(self, conversation_id: str) -> int:
        """Holder and waiters of the conversation's lock (0 when nobody holds it)."""
        queue = self._queues.get(conversation_id)
        return len(queue.tickets) if queue is not None else 0
