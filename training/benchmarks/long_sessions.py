"""A turn's cost against the length of its session, with one server process or several.

One conversation of ``--turns`` turns in one session (the restaurant bot, ``/intent`` payloads,
its validation action in-process), ``Agent.handle_text`` in this process. With ``--processes N``
the turns go to N agents in turn, each with its own store object (its own connections) on one
database, as N server processes behind a load balancer without sticky sessions: each agent finds
the conversation moved on by the others at every turn of its own. Reports the median turn at the
start of the session and at its end, and how each agent's conversation cache fared (hits,
caught up with the events the others appended, full loads).

    python -m training.benchmarks.long_sessions [--model M] [--store sqlite|postgresql|memory]
        [--processes 1,2] [--turns 500] [--form]

Without ``--model`` the bot is trained first (dialogue only). PostgreSQL gets a scratch
database on ``--postgres`` (dropped after). Prints one JSON object per result on its own line
(seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.store import ConversationStore, InMemoryStore, SQLStore
from training.benchmarks.load import PAYLOADS
from training.benchmarks.store import postgres_url

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "domains" / "restaurant"
# Turns that keep one session going without ending in a form: a greeting, a question, chit-chat.
MESSAGES = ["/greet", "/bot_challenge", "/chitchat", "/thankyou"]
# With ``--form``: the REST benchmark's conversation over and over (the restaurant form, its
# validation action, its submission), in one session.
FORM_MESSAGES = PAYLOADS
WINDOW = 50  # turns in each median


def train_model() -> TrainedModel:
    from chatbot.project.loader import load_project
    from chatbot.project.training_data import NLUData
    from training.train import train_project

    project = load_project(BOT)
    project.nlu = NLUData()  # payloads only
    return train_project(project, show_progress=False)


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path, server: str) -> AsyncIterator[Callable[[], Any]]:
    """A maker of store objects on one scratch database of ``kind``."""
    if kind == "memory":
        shared = InMemoryStore()  # one store object: the processes of one memory are one
        yield lambda: shared
    elif kind == "sqlite":
        yield lambda: SQLStore(f"sqlite:///{folder / 'conversations.db'}")
    else:
        async with postgres_url(server) as url:
            yield lambda: SQLStore(url)


async def run(
    model: TrainedModel,
    make_store: Callable[[], ConversationStore],
    processes: int,
    turns: int,
    messages: list[str],
) -> dict[str, Any]:
    stores = [make_store() for _ in range(processes)]
    agents = [
        Agent(model, store=store, action_executor=InProcessExecutor(BOT, "actions"))
        for store in stores
    ]
    times: list[float] = []
    try:
        for turn in range(turns):
            agent = agents[turn % processes]
            started = time.perf_counter()
            await agent.handle_text(messages[turn % len(messages)], "long-session")
            times.append(time.perf_counter() - started)
    finally:
        for agent in agents:
            await agent.close()
    caches = [agent.processor.cache for agent in agents]
    return {
        "processes": processes,
        "turns": turns,
        f"median_s_turns_3_{3 + WINDOW}": round(statistics.median(times[3 : 3 + WINDOW]), 6),
        f"median_s_turns_{turns - WINDOW}_{turns}": round(statistics.median(times[-WINDOW:]), 6),
        "cache_hits": sum(c.hits for c in caches),
        "cache_caught_up": sum(c.caught_up for c in caches),
        "full_loads": sum(c.misses for c in caches),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    model = TrainedModel.from_file(args.model) if args.model else train_model()
    results = []
    for processes in args.processes:
        with tempfile.TemporaryDirectory(prefix="chatbot-long-") as folder:
            async with database(args.store, Path(folder), args.postgres) as make_store:
                messages = FORM_MESSAGES if args.form else MESSAGES
                figures = await run(model, make_store, processes, args.turns, messages)
        result = {
            "name": f"long_session.processes_{processes}",
            "store": args.store,
            "messages": "form" if args.form else "chitchat",
            **figures,
        }
        print(result, flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained restaurant model")
    parser.add_argument("--store", choices=("sqlite", "postgresql", "memory"), default="sqlite")
    parser.add_argument("--processes", default="1,2", help="agents sharing the database")
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument(
        "--form", action="store_true", help="the REST benchmark's form conversation, over and over"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    args.processes = [int(p) for p in args.processes.split(",")]
    if args.turns < 3 + 2 * WINDOW:
        parser.error(f"--turns must be at least {3 + 2 * WINDOW}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("rasa_sdk").setLevel(logging.ERROR)
    for result in asyncio.run(bench(args)):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
