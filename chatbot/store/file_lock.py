"""FileLockStore: conversation locks shared by the processes of one machine, through one file.

What ``chatbot run --workers`` uses where endpoints.yml names no lock store: the workers of one
machine need no Redis to take a conversation's messages one at a time.

In each process a conversation's tickets queue as ``InMemoryLockStore``'s (first come, first
served, with its lifetime and wait timeout); the ticket at the head also takes, for every process,
a POSIX record lock (``fcntl``) on one byte of the lock file, the byte the conversation id's hash
chooses. The kernel releases the record locks of a process that dies, so a crashed worker leaves
no lock behind. Taking a record lock never blocks the event loop: a byte another process holds is
tried again every few milliseconds (no order between processes). Conversations whose ids hash to
one byte (one in four billion) share their lock. Record locks belong to a process, not to a task,
so each process counts its holders of a byte and lets the byte go when the last one releases.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from chatbot.errors import LockTimeout
from chatbot.store.locks import (
    DEFAULT_LOCK_LIFETIME,
    DEFAULT_WAIT_TIMEOUT,
    InMemoryLockStore,
    LockStore,
    Ticket,
)

try:
    import fcntl
except ImportError:  # Windows: no record locks; several workers need a Redis lock store there
    fcntl = None  # type: ignore[assignment]

AVAILABLE = fcntl is not None
_FIRST_RETRY = 0.001
_MAX_RETRY = 0.05


def lock_byte(conversation_id: str) -> int:
    """The byte of the lock file that stands for the conversation."""
    digest = hashlib.blake2b(conversation_id.encode("utf-8", "surrogatepass"), digest_size=4)
    return int.from_bytes(digest.digest(), "big")


class FileLockStore(LockStore):
    def __init__(
        self,
        path: Path,
        *,
        lock_lifetime: float | None = DEFAULT_LOCK_LIFETIME,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> None:
        if fcntl is None:
            raise RuntimeError("file locks need POSIX record locks (fcntl)")
        self.path = path
        self.wait_timeout = wait_timeout
        self._local = InMemoryLockStore(lock_lifetime=lock_lifetime, wait_timeout=wait_timeout)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._holders: dict[int, int] = {}  # byte -> tickets of this process that hold it

    async def acquire(self, conversation_id: str) -> Ticket:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_timeout
        started = loop.time()
        ticket = await self._local.acquire(conversation_id)
        byte = lock_byte(conversation_id)
        try:
            if not self._holders.get(byte):
                delay = _FIRST_RETRY
                while not self._try(byte):
                    now = loop.time()
                    if now >= give_up:
                        raise LockTimeout(conversation_id, now - started)
                    await asyncio.sleep(min(delay, give_up - now))
                    delay = min(delay * 2, _MAX_RETRY)
        except BaseException:
            await self._local.release(conversation_id, ticket)
            raise
        self._holders[byte] = self._holders.get(byte, 0) + 1
        return ticket

    def _try(self, byte: int) -> bool:
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
        except OSError:  # EACCES or EAGAIN: another process holds it
            return False
        return True

    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        byte = lock_byte(conversation_id)
        holders = self._holders.get(byte, 0)
        if holders <= 1:
            self._holders.pop(byte, None)
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, byte)
        else:
            self._holders[byte] = holders - 1
        await self._local.release(conversation_id, ticket)

    async def queue_length(self, conversation_id: str) -> int:
        """This process's holder and waiters (other processes' are not known here)."""
        return await self._local.queue_length(conversation_id)

    async def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # lets every byte this process still holds go
            self._fd = -1
