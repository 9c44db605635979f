"""REST channel throughput with each conversation store, and the store's share of a message's time.

Clients on loopback send the moodbot's payload messages (``/greet``, ``/mood_great``,
``/goodbye``, no NLU) to ``POST /webhooks/rest/webhook``; each of ``concurrency`` clients has a
conversation of its own and sends its next message when the last one is answered, for
``--seconds`` (at most ``--max-messages``) per point. Setups:

- ``memory``: the in-memory store and in-process locks (the baseline: no store cost);
- ``sqlite``: SQLite in WAL mode; in-process locks with one server, Redis locks with two;
- ``postgresql``: PostgreSQL and Redis locks.

each with one server process and with two. A client's conversation has 20 messages, then it
starts another; a conversation sticks to one server (as behind a load balancer with session
affinity, so that the in-memory baseline holds with two), and the next goes to the next server.

The store's share of a message's time, measured two ways:

- *timed*: each server wraps its store and lock store in timers (``next_seq``/``load``/
  ``append``, ``acquire``/``release``); ``store_s_per_msg`` and ``lock_s_per_msg`` are the time
  spent awaiting them per message, and ``store_share``/``lock_share`` those over the message's
  mean latency seen by the client. With many messages in flight an await also waits for the
  event loop, so these over-state the store's own cost above concurrency 1.
- *against memory*: ``cpu_s_per_msg`` is the servers' CPU time (user + system, from /proc) per
  message, and ``store_cpu_share`` = 1 - cpu(memory) / cpu(setup): the part of the server's work
  that the store and locks add (database and Redis servers' own CPU not counted).
  ``throughput_vs_memory`` is messages/s over the memory baseline's at the same point.

The servers are ``chatbot.server``'s application (``create_app``, the REST channel) started by
this module (``rest_store serve``, which runs ``_timed_store.serve``), so the stores can be
wrapped; they run without a rate limit, and with ``OMP_NUM_THREADS=1`` (``--torch-threads``; 0
leaves torch's default of a thread per core, which on a busy 2-core machine costs the moodbot's
LSTM step about 15 times the CPU).

    python -m training.benchmarks.rest_store [--seconds 5] [--concurrency 1,16,64]
        [--setups memory,sqlite,postgresql] [--processes 1,2] [--model FILE] [--torch-threads 1]
        [--postgres-url postgresql+asyncpg://...] [--redis-url redis://...]

PostgreSQL: a scratch database on the server of ``--postgres-url`` (default
``$CHATBOT_TEST_POSTGRES_URL`` or postgresql+asyncpg://postgres@127.0.0.1:5432/test), dropped
after. Redis: keys under a scratch prefix, deleted after. A setup whose service cannot be reached
is skipped. Prints progress to stderr, then one JSON object per result on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path

import asyncpg

from training.benchmarks._load_client import measure, warm_up
from training.benchmarks._servers import servers_running
from training.benchmarks._timed_store import PROJECT, serve
from training.benchmarks.services import (
    DEFAULT_REDIS_URL,
    delete_redis_keys,
    endpoints_file,
    needs_redis,
    redis_reachable,
)
from training.benchmarks.store import DEFAULT_POSTGRES_URL, Result

SETUPS = ("memory", "sqlite", "postgresql")


async def bench_setup(
    setup: str,
    processes: int,
    args: argparse.Namespace,
    model: Path,
    prefix: str,
    baseline: dict[tuple[int, int], dict[str, float]],
) -> list[Result]:
    """Every concurrency level of one setup on ``processes`` servers."""
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        async with (
            endpoints_file(
                setup,
                processes,
                folder,
                postgres_server_url=args.postgres_url,
                redis_url=args.redis_url,
                prefix=prefix,
            ) as endpoints,
            servers_running(processes, model, endpoints, folder, args.torch_threads) as servers,
        ):
            await warm_up(servers)
            for concurrency in args.concurrency:
                figures = await measure(servers, concurrency, args.seconds, args.max_messages)
                figures["torch_threads"] = args.torch_threads
                if setup == "memory":
                    baseline[processes, concurrency] = figures
                else:
                    compare(figures, baseline.get((processes, concurrency)))
                name = f"rest_store.{setup}.processes_{processes}.concurrency_{concurrency}"
                results.append(Result(name, figures))
                print(f"{name} {figures}", file=sys.stderr)
    return results


async def bench(args: argparse.Namespace, model: Path) -> list[Result]:
    results: list[Result] = []
    baseline: dict[tuple[int, int], dict[str, float]] = {}  # memory's figures
    redis_problem = await redis_reachable(args.redis_url)
    prefix = f"chatbot-bench-{secrets.token_hex(4)}"
    try:
        for setup in args.setups:
            for processes in args.processes:
                if needs_redis(setup, processes) and redis_problem:
                    print(f"{setup} x{processes}: skipped, Redis: {redis_problem}", file=sys.stderr)
                    continue
                try:
                    results += await bench_setup(setup, processes, args, model, prefix, baseline)
                except (OSError, asyncpg.PostgresError) as error:
                    print(f"{setup} x{processes}: skipped ({error})", file=sys.stderr)
    finally:
        if not redis_problem:
            await delete_redis_keys(args.redis_url, prefix)
    return results


def compare(figures: dict[str, float], memory: dict[str, float] | None) -> None:
    """Add the figures against the in-memory baseline at the same point."""
    if not memory:
        return
    if memory.get("messages_per_s"):
        figures["throughput_vs_memory"] = round(
            figures["messages_per_s"] / memory["messages_per_s"], 3
        )
    if figures.get("cpu_s_per_msg") and memory.get("cpu_s_per_msg"):
        figures["store_cpu_share"] = round(
            1 - memory["cpu_s_per_msg"] / figures["cpu_s_per_msg"], 3
        )


def train_model(folder: Path) -> Path:
    """The moodbot's dialogue model (no NLU: the messages are ``/intent`` payloads)."""
    from chatbot.project.loader import load_project
    from chatbot.project.training_data import NLUData
    from training.train import train_project

    project = load_project(PROJECT)
    project.nlu = NLUData()
    path = folder / "moodbot.model"
    train_project(project, show_progress=False).to_file(path)
    return path


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="rest_store serve")
        parser.add_argument("--model", type=Path, required=True)
        parser.add_argument("--endpoints", type=Path, required=True)
        parser.add_argument("--port", type=int, required=True)
        served = parser.parse_args(argv[1:])
        serve(served.model, served.endpoints, served.port)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per point")
    parser.add_argument("--max-messages", type=int, default=5000, help="per point")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--setups", type=lambda s: s.split(","), default=list(SETUPS))
    parser.add_argument(
        "--processes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2]
    )
    parser.add_argument("--model", type=Path, default=None, help="default: train the moodbot")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS of the servers (0: torch's default, a thread per core)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHATBOT_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    )
    args = parser.parse_args(argv)
    unknown = set(args.setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown setup(s) {', '.join(sorted(unknown))}; known: {', '.join(SETUPS)}")
    if "memory" in args.setups:  # the baseline first, so the others can be compared with it
        args.setups = ["memory", *(s for s in args.setups if s != "memory")]
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or train_model(Path(scratch))
        results = asyncio.run(bench(args, model))
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
