"""FileLockStore: conversation locks that the processes of one machine share through a file (what
``chatbot run --workers`` uses without a lock_store block). Other processes are real processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from chatbot.errors import LockTimeout
from chatbot.store import file_lock
from chatbot.store.file_lock import FileLockStore, lock_byte

pytestmark = pytest.mark.skipif(not file_lock.AVAILABLE, reason="no POSIX record locks")

WAIT = 30.0


def _holder(path: str, conversation_id: str, conn: Connection, same_byte: bool) -> None:
    """Another process: take the conversation's lock, say so, release it when told (or die)."""
    if same_byte:
        file_lock.lock_byte = lambda conversation_id: 7  # type: ignore[assignment]

    async def run() -> None:
        store = FileLockStore(Path(path))
        conn.send("trying")
        ticket = await store.acquire(conversation_id)
        conn.send("held")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await store.release(conversation_id, ticket)
        conn.send("released")
        await store.close()

    asyncio.run(run())


class Other:
    def __init__(self, path: Path, conversation_id: str, *, same_byte: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_holder, args=(str(path), conversation_id, child, same_byte)
        )
        self.process.start()
        assert self.conn.poll(WAIT) and self.conn.recv() == "trying"
        assert self.conn.poll(WAIT) and self.conn.recv() == "held"

    def release(self) -> None:
        self.conn.send("release")
        assert self.conn.poll(WAIT) and self.conn.recv() == "released"

    def kill(self) -> None:
        os.kill(self.process.pid or 0, signal.SIGKILL)
        self.process.join(WAIT)


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "conversations.lock"


async def test_another_process_holding_the_conversation_makes_us_wait(path: Path) -> None:
    other = Other(path, "ann")
    store = FileLockStore(path)
    try:
        ticket = await asyncio.wait_for(store.acquire("bob"), 1.0)  # another conversation: free
        await store.release("bob", ticket)
        waiting = asyncio.ensure_future(store.acquire("ann"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, other.release)
        ticket = await asyncio.wait_for(waiting, WAIT)
        assert time.monotonic() - started < 1.0
        await store.release("ann", ticket)
    finally:
        await store.close()
        other.process.join(WAIT)


async def test_a_dead_holder_leaves_no_lock(path: Path) -> None:
    other = Other(path, "ann")
    store = FileLockStore(path, wait_timeout=0.3)
    try:
        with pytest.raises(LockTimeout):
            await store.acquire("ann")
        other.kill()
        ticket = await asyncio.wait_for(store.acquire("ann"), 1.0)
        await store.release("ann", ticket)
    finally:
        await store.close()


async def test_a_shared_byte_is_let_go_only_by_its_last_holder_here(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two conversations on one byte: a record lock belongs to the process, so releasing one of
    them must not open the other to another process."""
    monkeypatch.setattr(file_lock, "lock_byte", lambda conversation_id: 7)
    store = FileLockStore(path)
    try:
        first = await store.acquire("ann")
        second = await asyncio.wait_for(store.acquire("bob"), 1.0)  # ours already
        await store.release("ann", first)
        other = await asyncio.get_running_loop().run_in_executor(None, lambda: _start_waiting(path))
        assert not other.conn.poll(0.3)  # still ours: "bob" is held
        await store.release("bob", second)
        assert other.conn.poll(WAIT) and other.conn.recv() == "held"
        other.release()
        other.process.join(WAIT)
    finally:
        await store.close()


def _start_waiting(path: Path) -> Other:
    """Another process that asks for a conversation on byte 7, without waiting for it."""
    other = Other.__new__(Other)
    context = multiprocessing.get_context("spawn")
    other.conn, child = context.Pipe()
    other.process = context.Process(target=_holder, args=(str(path), "cy", child, True))
    other.process.start()
    assert other.conn.poll(WAIT) and other.conn.recv() == "trying"
    return other


async def test_in_one_process_the_conversation_queues_first_come_first_served(
    path: Path,
) -> None:
    store = FileLockStore(path)
    order: list[int] = []

    async def turn(n: int) -> None:
        async with store.lock("ann"):
            order.append(n)
            await asyncio.sleep(0.01)

    try:
        await asyncio.gather(*(turn(n) for n in range(5)))
        assert order == [0, 1, 2, 3, 4]
        assert await store.queue_length("ann") == 0
    finally:
        await store.close()


def test_conversations_spread_over_the_file() -> None:
    bytes_ = {lock_byte(f"user-{n}") for n in range(10_000)}
    assert len(bytes_) > 9_980 and max(bytes_) < 2**32
    assert lock_byte("ann") == lock_byte("ann") != lock_byte("Ann")
