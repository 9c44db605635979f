"""Exactly-once, in-order processing of webhook deliveries: a bounded TTL cache of what was seen
(Slack retries, Telegram re-sends) and one FIFO worker per conversation.

A webhook handler verifies the request, asks ``SeenCache.first_time(key)``, hands the work to
``ConversationWorkers.submit(conversation, job)`` and answers 200 at once; the job runs later, after
every job submitted before it for the same conversation.

``Deliveries`` decides what is a repeat. With a Redis lock store (``lock_store: type: redis``, the
set-up for several server processes behind a load balancer) the keys live in that Redis, so a
retry that reaches another process is still a repeat; otherwise they live in the process's
``SeenCache``. Order across processes comes from the conversation lock, which is FIFO.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[], Awaitable[Any]]


class SeenCache:
    """Keys seen in the last ``ttl`` seconds, at most ``max_entries`` of them (oldest go first)."""

    def __init__(
        self,
        ttl: float = 3600.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert ttl > 0 and max_entries > 0, f"ttl={ttl} and max_entries={max_entries} must be > 0"
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> when first seen, oldest first

    def first_time(self, *keys: str) -> bool:
        """True (and remember every key) unless one of ``keys`` was seen within the TTL."""
        now = self._clock()
        self._expire(now)
        if any(key in self._seen for key in keys):
            return False
        for key in keys:
            self._seen[key] = now
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self.ttl:
                break
            del self._seen[key]


class Deliveries:
    """What a channel has been delivered already: shared through Redis when the server's lock
    store is Redis (``locks.redis``), else this process's ``SeenCache``.

    In Redis each key is ``<lock key prefix>seen:<channel>:<key>``, set with ``NX`` and a TTL:
    the first process to set it answers, every other one sees a repeat. When Redis cannot be
    reached the process's own cache decides (and says so in the log): a retry may then be
    answered twice by two processes, never dropped.
    """

    def __init__(self, channel: str, *, ttl: float = 3600.0, local: SeenCache | None = None):
        self.channel = channel
        self.ttl = ttl
        self.local = local or SeenCache(ttl=ttl)

    async def first_time(self, locks: Any, *keys: str) -> bool:
        """True (and remember every key) unless one of ``keys`` was delivered within the TTL."""
        client = getattr(locks, "redis", None)
        if client is None or not keys:
            return self.local.first_time(*keys)
        from redis.exceptions import RedisError  # only with a Redis lock store

        prefix = f"{locks.key_prefix}seen:{self.channel}:"
        seconds = max(1, round(self.ttl))
        try:
            async with client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.set(prefix + key, b"1", nx=True, ex=seconds)
                fresh = await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning(
                "%s: Redis unreachable for deduplication (%s); this process's memory decides",
                self.channel,
                str(error).strip() or type(error).__name__,
            )
            return self.local.first_time(*keys)
        return all(fresh)


class ConversationWorkers:
    """One FIFO queue per conversation, drained by one task that exits when its queue is empty.

    Every task is kept in ``_tasks`` until it ends; ``close()`` lets the running jobs finish for
    a grace period, then cancels what is left and awaits it. A failing job is logged and the next
    one runs: nothing a job raises reaches the event loop.
    """

    def __init__(self, name: str, *, max_pending: int = 200, grace: float = 10.0) -> None:
        self.name = name
        self.max_pending = max_pending
        self.grace = grace  # seconds close() waits for running jobs by default
        self._queues: dict[str, deque[Job]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._waiters: set[asyncio.Future[Any]] = set()  # results of run(), until they are set
        self._closed = False

    def submit(self, conversation: str, job: Job) -> bool:
        """Queue ``job`` behind the conversation's earlier jobs; False when it was dropped."""
        if self._closed:
            logger.warning("%s: shutting down, dropped a job for a conversation", self.name)
            return False
        queue = self._queues.setdefault(conversation, deque())
        if len(queue) >= self.max_pending:
            logger.warning(
                "%s: a conversation has %d jobs waiting; dropped a new one",
                self.name,
                len(queue),
            )
            return False
        queue.append(job)
        if conversation not in self._tasks:
            task = asyncio.create_task(self._drain(conversation), name=f"{self.name}-worker")
            self._tasks[conversation] = task
        return True

    async def run(self, conversation: str, job: Callable[[], Awaitable[T]]) -> T:
        """Queue ``job`` like ``submit`` and wait for its result (or its exception)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.add(done)
        done.add_done_callback(self._waiters.discard)

        async def wrapped() -> None:
            try:
                result = await job()
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:  # handed to the waiter, who decides what it means
                if not done.cancelled():
                    done.set_exception(exc)
                return
            if not done.cancelled():
                done.set_result(result)

        if not self.submit(conversation, wrapped):
            raise RuntimeError(f"{self.name}: the conversation's queue is full or closed")
        return await done

    @property
    def busy(self) -> int:
        """How many conversations have a worker right now."""
        return len(self._tasks)

    async def close(self, grace: float | None = None) -> None:
        """Stop taking jobs, give the queued ones ``grace`` seconds (``self.grace`` unless
        given), cancel the rest."""
        self._closed = True
        tasks = list(self._tasks.values())
        if tasks:
            await self._finish(tasks, self.grace if grace is None else grace)
        for waiter in list(self._waiters):  # their jobs were dropped with a cancelled worker
            waiter.cancel()
        self._queues.clear()

    async def _finish(self, tasks: list[asyncio.Task[None]], grace: float) -> None:
        _, pending = await asyncio.wait(tasks, timeout=grace)
        if pending:
            logger.warning("%s: cancelling %d unfinished conversation(s)", self.name, len(pending))
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, conversation: str) -> None:
        queue = self._queues[conversation]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except Exception:
                    logger.exception("%s: a job failed; going on with the next one", self.name)
        finally:
            del self._tasks[conversation]
            if not queue:
                self._queues.pop(conversation, None)
