"""Conversation store throughput: turns per second on SQLite, PostgreSQL and MySQL / MariaDB.

A *turn* is what the processor does for one user message: take the conversation's lock, load its
last session, append the turn's events (user message with parse data, action, bot message,
action_listen; every fifth turn opens a new session). ``concurrency`` tasks run turns on their
own conversations for ``--seconds`` each. A second measure loads the last session of a
conversation with a long history, to show that the cost of a turn does not grow with it.

    python -m training.benchmarks.store [--seconds 5] [--concurrency 1,16,64]
        [--backends sqlite,postgresql,mysql] [--postgres-url postgresql+asyncpg://...]
        [--mysql-url mysql://...]

PostgreSQL and MySQL: a scratch database is created on the server of ``--postgres-url`` (default
``$CHATBOT_TEST_POSTGRES_URL`` or postgresql+asyncpg://postgres@127.0.0.1:5432/test) or
``--mysql-url`` (default ``$CHATBOT_TEST_MYSQL_URL`` or mysql://root@127.0.0.1:3306/test) and
dropped after. Prints a table, then one JSON object per result on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from chatbot.errors import StoreUnavailable
from chatbot.store import ConversationStore, InMemoryLockStore, SQLStore
from training.benchmarks._stats import quantile

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
BACKENDS = ("sqlite", "postgresql", "mysql")
HISTORY_SESSIONS, HISTORY_SESSION_EVENTS = 200, 50  # the long conversation: 10,000 events


def turn_events(turn: int, now: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if turn % 5 == 0:
        events += [
            {"event": "action", "name": "action_session_start", "timestamp": now},
            {"event": "session_started", "timestamp": now},
            {"event": "action", "name": "action_listen", "timestamp": now},
        ]
    events += [
        {
            "event": "user",
            "timestamp": now,
            "text": f"I would like a table for {turn % 8 + 1} in the centre",
            "parse_data": {
                "intent": {"name": "book_table", "confidence": 0.97},
                "entities": [
                    {"entity": "people", "value": turn % 8 + 1, "start": 24, "end": 25},
                    {"entity": "area", "value": "centre", "start": 33, "end": 39},
                ],
                "intent_ranking": [
                    {"name": "book_table", "confidence": 0.97},
                    {"name": "inform", "confidence": 0.02},
                ],
            },
            "input_channel": "rest",
            "message_id": secrets.token_hex(16),
        },
        {"event": "action", "name": "utter_ask_time", "timestamp": now, "policy": "lstm"},
        {"event": "bot", "timestamp": now, "text": "For what time?", "data": {}},
        {"event": "action", "name": "action_listen", "timestamp": now},
    ]
    return events


@dataclass(frozen=True)
class Result:
    name: str
    figures: dict[str, float]

    def line(self) -> str:
        return json.dumps({"name": self.name, "split": "synthetic", **self.figures})


async def run_turns(store: ConversationStore, concurrency: int, seconds: float) -> dict[str, float]:
    locks = InMemoryLockStore()
    loads: list[float] = []
    appends: list[float] = []
    loop = asyncio.get_running_loop()
    tag = secrets.token_hex(3)
    deadline = loop.time() + seconds

    async def user(worker: int) -> None:
        conversation_id = f"bench-{tag}-c{concurrency}-{worker}"
        turn = 0
        while loop.time() < deadline:
            async with locks.lock(conversation_id):
                started = time.perf_counter()
                conversation = await store.load(conversation_id)
                loaded = time.perf_counter()
                events = turn_events(turn, time.time())
                await store.append(conversation_id, events, start_seq=conversation.next_seq)
                appended = time.perf_counter()
            loads.append(loaded - started)
            appends.append(appended - loaded)
            turn += 1

    started = loop.time()
    await asyncio.gather(*(user(worker) for worker in range(concurrency)))
    elapsed = loop.time() - started
    return {
        "turns_per_s": round(len(loads) / elapsed, 1),
        "load_p50_s": round(quantile(loads, 0.5), 6),
        "load_p99_s": round(quantile(loads, 0.99), 6),
        "append_p50_s": round(quantile(appends, 0.5), 6),
        "append_p99_s": round(quantile(appends, 0.99), 6),
        "turns": len(loads),
        "seconds": round(elapsed, 2),
        # Other work on the machine depresses these figures; this says how much there was.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def long_history(store: ConversationStore) -> dict[str, float]:
    """Load times of a conversation with 10,000 events in 200 sessions vs one short session."""
    long_id, short_id = f"long-{secrets.token_hex(3)}", f"short-{secrets.token_hex(3)}"
    seq = 0
    for session in range(HISTORY_SESSIONS):
        batch = turn_events(0, float(session))[:3]
        while len(batch) < HISTORY_SESSION_EVENTS:
            batch += turn_events(1, float(session))[: HISTORY_SESSION_EVENTS - len(batch)]
        await store.append(long_id, batch, start_seq=seq)
        seq += len(batch)
    await store.append(short_id, batch, start_seq=0)

    async def timed(conversation_id: str, all_sessions: bool = False) -> float:
        times = []
        for _ in range(20):
            started = time.perf_counter()
            await store.load(conversation_id, all_sessions=all_sessions)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times), 6)

    return {
        "events": seq,
        "load_last_session_s": await timed(long_id),
        "load_short_conversation_s": await timed(short_id),
        "load_all_sessions_s": await timed(long_id, all_sessions=True),
    }


@asynccontextmanager
async def sqlite_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'conversations.db'}"


@asynccontextmanager
async def postgres_url(server_url: str) -> AsyncIterator[str]:
    server = make_url(server_url)
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"chatbot_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def mysql_url(server_url: str) -> AsyncIterator[str]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from chatbot.store.sql import async_url

    server = make_url(server_url)
    name = f"chatbot_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(async_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await admin.dispose()


async def bench(args: argparse.Namespace) -> list[Result]:
    backends: dict[str, Callable[[], Any]] = {
        "sqlite": sqlite_url,
        "postgresql": lambda: postgres_url(args.postgres_url),
        "mysql": lambda: mysql_url(args.mysql_url),
    }
    results = []
    for backend in args.backends:
        try:
            async with (
                backends[backend]() as url,
                SQLStore(url, pool_size=32, max_overflow=64) as store,
            ):
                for concurrency in args.concurrency:
                    figures = await run_turns(store, concurrency, args.seconds)
                    name = f"store.{backend}.concurrency_{concurrency}"
                    results.append(Result(name, figures))
                    print(f"{backend:10} c={concurrency:<3} {figures}", file=sys.stderr)
                figures = await long_history(store)
                results.append(Result(f"store.{backend}.long_history", figures))
                print(f"{backend:10} long history {figures}", file=sys.stderr)
        except (OSError, asyncpg.PostgresError, StoreUnavailable, DBAPIError) as error:
            print(f"{backend}: skipped, not reachable ({error})", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--backends", type=lambda s: s.split(","), default=list(BACKENDS))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
    )
    parser.add_argument(
        "--mysql-url", default=os.environ.get("CHATBOT_TEST_MYSQL_URL") or DEFAULT_MYSQL_URL
    )
    args = parser.parse_args(argv)
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(
            f"unknown backend(s) {', '.join(sorted(unknown))}; known: {', '.join(BACKENDS)}"
        )
    results = asyncio.run(bench(args))
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
