"""Server speed: messages per second and latency of ``chatbot run``'s REST channel under load.

The default example bot (domains/restaurant, its rasa-sdk actions in-process, the SQLite store)
is served by ``chatbot run`` in a process of its own on 127.0.0.1. A load client (aiohttp, in this
process) plays many conversations, each the booking of a table in 7 messages, at concurrency 1,
16 and 64 (that many conversations in flight), each level bounded by ``--messages`` and
``--seconds``. The same client then loads a minimal aiohttp server that answers a fixed JSON list
(the ceiling of this machine), and the bot's handling is timed in-process (NLU + dialogue + SQLite
store) and from process start to the first answer (startup). ``--store memory`` serves the
conversations from memory instead, to show what the store costs. ``--workers N`` serves with
``chatbot run --workers N`` (the workers lock conversations through a file; with
``--redis-lock`` through Redis at ``--redis-url``); the server's CPU time is then its processes'
together.

    python -m training.benchmarks.load [--model models/restaurant.model] [--text]
        [--concurrency 1,16,64] [--messages 2000] [--seconds 20] [--store sqlite|memory]
        [--workers N] [--redis-lock]

Messages are ``/intent`` payloads unless ``--text`` (then the NLU parses every one). Without
``--model`` the bot is trained first (NLU included). Each load level also says how much CPU time
the server's process and the client (this process) spent on a message: client and server share
the machine's cores, so the fixed-JSON ceiling is mostly the client's cost. Prints a table, then
one JSON object per result on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from training.benchmarks._servers import free_port, tree_cpu_seconds
from training.benchmarks._stats import quantile
from training.benchmarks.services import DEFAULT_REDIS_URL, redis_block

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "domains" / "restaurant"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 180.0

PAYLOADS = [
    "/greet",
    "/request_restaurant",
    '/inform{"cuisine": "italian"}',
    '/inform{"number": "4"}',
    "/affirm",
    "/deny",
    "/thankyou",
]
TEXTS = [
    "hello there",
    "I'd like to book a table",
    "italian food please",
    "we are 4 people",
    "yes",
    "no",
    "thanks a lot",
]
CEILING_ANSWER = [{"recipient_id": "x", "text": "Hello! I can book you a table."}]


@dataclass(frozen=True)
class Result:
    name: str
    figures: dict[str, Any]

    def line(self) -> str:
        return json.dumps({"name": self.name, **self.figures})


# -- the servers ---------------------------------------------------------------------------------


def write_project(folder: Path, model: Path, store: str, lock_store: str = "") -> Path:
    """A copy of the restaurant bot that serves ``model`` with its actions in-process
    (``lock_store``: an endpoints.yml block for it, or none)."""
    project = folder / "restaurant"
    shutil.copytree(BOT, project, ignore=shutil.ignore_patterns("__pycache__", "models", ".*"))
    (project / "models").mkdir()
    shutil.copy(model, project / "models" / "restaurant.model")
    (project / "credentials.yml").write_text("rest:\n")
    endpoints = "action_endpoint:\n  actions_module: actions\n"
    if store == "memory":
        endpoints += "tracker_store:\n  type: in_memory\n"
    (project / "endpoints.yml").write_text(endpoints + lock_store)
    return project


@asynccontextmanager
async def process(args: list[str], ready: str, log: Path) -> AsyncIterator[tuple[float, str, int]]:
    """Run ``python <args>`` until the block ends; yields the seconds until it printed a line
    with ``ready``, that line, and the process's id."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    drain: asyncio.Task[bytes] | None = None
    with open(log, "wb") as errors:
        child = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
        assert child.stdout is not None
        try:
            line = b""
            while ready.encode() not in line:
                if child.stdout.at_eof():
                    raise RuntimeError(f"{args[:3]} did not start; see {log}")
                line = await asyncio.wait_for(child.stdout.readline(), START_TIMEOUT)
            seconds = time.perf_counter() - started
            drain = asyncio.create_task(child.stdout.read())
            yield seconds, line.decode().strip(), child.pid
        finally:
            if child.returncode is None:
                child.terminate()
                await asyncio.wait_for(child.wait(), 60)
            if drain is not None:
                await drain


async def first_answer_seconds(url: str, started: float) -> float:
    """Seconds from ``started`` until the REST channel answered a first message."""
    async with aiohttp.ClientSession() as session:
        body = {"sender": "startup-probe", "message": "/greet"}
        async with session.post(f"{url}/webhooks/rest/webhook", json=body) as response:
            response.raise_for_status()
    return time.perf_counter() - started


def serve_ceiling(port: int) -> None:
    """The ceiling: the least an aiohttp server can do per request on this machine."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(CEILING_ANSWER)

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", answer)
    web.run_app(
        app, host=LOOPBACK, port=port, access_log=None, print=lambda *_: print("ceiling up")
    )


# -- the load client -----------------------------------------------------------------------------


async def load(
    url: str,
    messages: list[str],
    concurrency: int,
    max_messages: int,
    max_seconds: float,
    tag: str,
    min_seconds: float = 0.0,
) -> dict[str, Any]:
    """``concurrency`` conversations in flight, each sending ``messages`` in turn, until
    ``max_messages`` were sent (and at least ``min_seconds`` passed: a fast target is measured
    for longer than its first fraction of a second) or ``max_seconds`` passed."""
    assert url.startswith(f"http://{LOOPBACK}:"), "the load client only talks to loopback"
    latencies: list[float] = []
    errors = 0
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    long_enough = loop.time() + min_seconds

    def more() -> bool:
        now = loop.time()
        return now < deadline and (sent < max_messages or now < long_enough)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def conversation_loop(worker: int) -> None:
            nonlocal errors, sent
            number = 0
            while more():
                sender = f"load-{tag}-c{concurrency}-{worker}-{number}"
                number += 1
                for text in messages:
                    if not more():
                        return
                    sent += 1
                    started = time.perf_counter()
                    try:
                        async with session.post(
                            f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
                        ) as response:
                            await response.read()
                            ok = response.status == 200
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        ok = False
                    latencies.append(time.perf_counter() - started)
                    errors += not ok

        started = loop.time()
        await asyncio.gather(*(conversation_loop(w) for w in range(concurrency)))
        elapsed = loop.time() - started
    return {
        "concurrency": concurrency,
        "messages": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(quantile(latencies, 0.95) * 1000, 2),
        "p99_ms": round(quantile(latencies, 0.99) * 1000, 2),
    }


async def measured(server_pid: int, level: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A load level's figures with the CPU time each side spent on a message: the server's
    process (Linux; None elsewhere) and this one, the client. The two share the machine's cores,
    so a server's throughput is bounded by both."""
    server_before = tree_cpu_seconds(server_pid)
    client_before = _own_cpu_seconds()
    figures = await level
    server_after = tree_cpu_seconds(server_pid)
    client = _own_cpu_seconds() - client_before
    count = max(figures["messages"], 1)
    server = None if server_before is None or server_after is None else server_after - server_before
    figures["server_cpu_ms_per_message"] = (
        round(server / count * 1000, 3) if server is not None else None
    )
    figures["client_cpu_ms_per_message"] = round(client / count * 1000, 3)
    return figures


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- in-process ----------------------------------------------------------------------------------


async def in_process(
    model_path: Path, folder: Path, messages: list[str], rounds: int, store_kind: str
) -> dict[str, Any]:
    """Median time of ``Agent.handle_text`` (NLU + dialogue + store), no HTTP."""
    from chatbot.actions.in_process import InProcessExecutor
    from chatbot.agent import Agent, TrainedModel
    from chatbot.store import ConversationStore, InMemoryStore, SQLStore

    started = time.perf_counter()
    model = TrainedModel.from_file(model_path)
    load_seconds = time.perf_counter() - started
    store: ConversationStore = (
        InMemoryStore() if store_kind == "memory" else SQLStore(f"sqlite:///{folder / 'i.db'}")
    )
    agent = Agent(model, store=store, action_executor=InProcessExecutor(BOT, "actions"))
    times: list[float] = []
    parse_times: list[float] = []
    try:
        await agent.handle_text(messages[0], "warm-up")
        for round_ in range(rounds):
            for text in messages:
                started = time.perf_counter()
                await agent.parse(text)
                parse_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                await agent.handle_text(text, f"in-process-{round_}")
                times.append(time.perf_counter() - started)
    finally:
        await agent.close()
    return {
        "messages": len(times),
        "median_ms": round(statistics.median(times) * 1000, 2),
        "p95_ms": round(quantile(times, 0.95) * 1000, 2),
        "parse_median_ms": round(statistics.median(parse_times) * 1000, 3),
        "model_load_s": round(load_seconds, 3),
    }


# -- the run -------------------------------------------------------------------------------------


def train_model(folder: Path) -> Path:
    from chatbot.project.loader import load_project
    from training.train import train_to_file

    out = folder / "restaurant.model"
    print("training the restaurant bot (NLU + dialogue) ...", file=sys.stderr)
    train_to_file(load_project(BOT), out, show_progress=False)
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}


async def bench(args: argparse.Namespace, folder: Path) -> list[Result]:
    model = args.model or train_model(folder)
    messages = TEXTS if args.text else PAYLOADS
    kind = "text" if args.text else "payload"
    lock_store = ""
    if args.redis_lock:
        block = redis_block(args.redis_url, f"chatbot-load-{os.getpid()}")
        lock_store = yaml.safe_dump({"lock_store": block}, sort_keys=False)
    project = write_project(folder, model, args.store, lock_store)
    results: list[Result] = []

    def level(url: str, concurrency: int, tag: str) -> Awaitable[dict[str, Any]]:
        bounds = (args.messages, args.seconds)
        return load(url, messages, concurrency, *bounds, tag, min_seconds=args.min_seconds)

    port = free_port()
    command = ["-m", "chatbot", "run", "--project", str(project), "--host", LOOPBACK]
    command += ["--port", str(port), "--rate-limit", args.rate_limit]
    command += ["--workers", str(args.workers)]
    spawned = time.perf_counter()
    async with process(command, "is up", folder / "chatbot.log") as (up_seconds, line, pid):
        url = f"http://{LOOPBACK}:{port}"
        serving = re.search(r"is up in ([0-9.]+) s", line)
        startup = {
            # From serve() (imports done) to listening: the model loaded, the store opened.
            "load_and_listen_s": float(serving.group(1)) if serving else None,
            # From spawning the process: Python and its imports (torch) as well.
            "process_up_s": round(up_seconds, 2),
            "first_answer_s": round(await first_answer_seconds(url, spawned), 2),
            **machine(),
        }
        results.append(Result("server.startup", startup))
        print(f"startup {startup}", file=sys.stderr)
        tag = str(os.getpid())
        for concurrency in args.concurrency:
            figures = await measured(pid, level(url, concurrency, tag))
            locks = "redis" if args.redis_lock else ("file" if args.workers > 1 else "memory")
            figures.update(input=kind, store=args.store, workers=args.workers, locks=locks)
            figures.update(machine())
            results.append(Result(f"server.rest.concurrency_{concurrency}", figures))
            print(f"chatbot c={concurrency:<3} {figures}", file=sys.stderr)

    port = free_port()
    command = ["-m", "training.benchmarks.load", "--ceiling-server", str(port)]
    async with process(command, "ceiling up", folder / "ceiling.log") as (_, _, pid):
        url = f"http://{LOOPBACK}:{port}"
        for concurrency in args.concurrency:
            figures = await measured(pid, level(url, concurrency, "ceil"))
            figures.update(machine())
            results.append(Result(f"ceiling.concurrency_{concurrency}", figures))
            print(f"ceiling c={concurrency:<3} {figures}", file=sys.stderr)

    for name, texts in (("payload", PAYLOADS), ("text", TEXTS)):
        figures = await in_process(model, folder, texts, args.rounds, args.store)
        figures.update(input=name, store=args.store, **machine())
        results.append(Result(f"in_process.{name}", figures))
        print(f"in-process {name} {figures}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained restaurant model")
    parser.add_argument("--text", action="store_true", help="send texts (NLU) not payloads")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--messages", type=int, default=2000, help="at most, per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per level")
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="at least, per level (past --messages)"
    )
    parser.add_argument("--rounds", type=int, default=20, help="in-process conversations")
    parser.add_argument("--rate-limit", default="60/min", help="the server's --rate-limit")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="chatbot run --workers")
    parser.add_argument(
        "--redis-lock", action="store_true", help="a Redis lock store (else the workers' file)"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHATBOT_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    )
    parser.add_argument("--ceiling-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ceiling_server is not None:
        serve_ceiling(args.ceiling_server)
        return
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("rasa_sdk").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="chatbot-load-") as folder:
        results = asyncio.run(bench(args, Path(folder)))
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
