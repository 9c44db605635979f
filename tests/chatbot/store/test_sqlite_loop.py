"""The SQLite store runs a turn's statements on the event loop's thread, on a connection that
never waits: a lock held by another process sends the call to a worker thread, which waits with
the busy timeout, and the WAL is checkpointed in a thread every few writes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chatbot.errors import StoreUnavailable
from chatbot.store import SQLStore
from chatbot.store import sql as sql_module

EVENTS = [
    {"event": "user", "text": "hello", "timestamp": 1.0, "parse_data": {"intent": {"name": "hi"}}},
    {"event": "action", "name": "action_listen", "timestamp": 2.0},
]


class CountingThreads(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(2)
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def checkpointed_events(database: Path) -> int:
    """The events in the database file itself, not counting the pages still in the WAL."""
    view = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
    try:
        return int(view.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError as error:  # the tables are still in the WAL
        assert "no such table" in str(error)
        return 0
    finally:
        view.close()


async def test_a_turns_statements_need_no_worker_thread(tmp_path: Path) -> None:
    async with SQLStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        threads = CountingThreads()
        store._threads = threads
        await store.next_seq("c")  # connects the loop connection, in a thread
        before = threads.calls
        seq = 0
        for _ in range(5):
            assert await store.next_seq("c") == seq
            await store.append("c", EVENTS, start_seq=seq)
            seq += len(EVENTS)
            assert (await store.load("c")).next_seq == seq
        assert threads.calls == before


async def test_a_write_waits_in_a_thread_for_another_connections_lock(tmp_path: Path) -> None:
    database = tmp_path / "c.db"
    async with SQLStore(f"sqlite:///{database}", busy_timeout=10.0) as store:
        await store.append("c", EVENTS, start_seq=0)
        other = sqlite3.connect(database, isolation_level=None)  # as another process would
        other.execute("BEGIN IMMEDIATE")
        writing = asyncio.ensure_future(store.append("c", EVENTS, start_seq=2))
        await asyncio.sleep(0.3)
        # The write waits for the lock; the loop does not, and reads go on (WAL).
        assert not writing.done()
        assert await store.next_seq("c") == 2
        assert len((await store.load("c")).events) == 2
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 10)
        other.close()
        stored = await store.load("c")
        assert stored.next_seq == 4
        assert [e["event"] for e in stored.events] == ["user", "action"] * 2


async def test_a_lock_held_past_the_busy_timeout_makes_the_store_unavailable(
    tmp_path: Path,
) -> None:
    database = tmp_path / "c.db"
    async with SQLStore(f"sqlite:///{database}", busy_timeout=0.2) as store:
        await store.append("c", EVENTS, start_seq=0)
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match=r"conversation store unavailable.*locked"):
                await store.append("c", EVENTS, start_seq=2)
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.append("c", EVENTS, start_seq=2)  # nothing half written
        assert (await store.load("c")).next_seq == 4


async def test_the_wal_is_checkpointed_in_a_thread_every_few_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_module, "_CHECKPOINT_EVERY", 4)
    database = tmp_path / "c.db"
    async with SQLStore(f"sqlite:///{database}") as store:
        seq = 0
        for _ in range(3):
            await store.append("c", EVENTS, start_seq=seq)
            seq += len(EVENTS)
        assert checkpointed_events(database) == 0  # the loop connection does not checkpoint
        await store.append("c", EVENTS, start_seq=seq)
        assert store._checkpoint is not None
        await store._checkpoint
        assert checkpointed_events(database) == 8


def _write_turns(database: str, writer: int, turns: int, start_at: float) -> int:
    """One process's store appending ``turns`` turns to conversations of its own, from the time
    ``start_at`` on (so that the processes overlap); returns the number of events it wrote."""

    async def run() -> int:
        async with SQLStore(f"sqlite:///{database}", busy_timeout=30.0) as store:
            await store.next_seq("warm-up")  # connected
            await asyncio.sleep(max(0.0, start_at - time.time()))
            written = 0
            for turn in range(turns):
                conversation = f"w{writer}-{turn % 5}"
                seq = await store.next_seq(conversation)
                await store.append(conversation, EVENTS, start_seq=seq)
                written += len(EVENTS)
            return written

    return asyncio.run(run())


async def test_processes_sharing_one_file_wait_for_each_other_and_lose_nothing(
    tmp_path: Path,
) -> None:
    # Each process writes on its loop connection, which never waits: when another process holds
    # the write lock, the call goes to a worker thread and waits there.
    database = tmp_path / "c.db"
    async with SQLStore(f"sqlite:///{database}") as store:
        await store.start()  # the tables, once
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    start_at = time.time() + 3.0  # after the processes have started and imported
    with ProcessPoolExecutor(3, mp_context=context) as pool:
        written = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _write_turns, str(database), w, 500, start_at)
                for w in range(3)
            )
        )
    assert written == [1000, 1000, 1000]
    async with SQLStore(f"sqlite:///{database}") as store:
        for writer in range(3):
            for c in range(5):
                stored = await store.load(f"w{writer}-{c}", all_sessions=True)
                assert stored.next_seq == 200
                assert [e["event"] for e in stored.events] == ["user", "action"] * 100
