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

- *timed*: each server wraps its store and lock store in timers (``load``/``append``,
  ``acquire``/``release``); ``store_s_per_msg`` and ``lock_s_per_msg`` are the time spent awaiting
  them per message, and ``store_share``/``lock_share`` those over the message's mean latency seen
  by the client. With many messages in flight an await also waits for the event loop, so these
  over-state the store's own cost above concurrency 1.
- *against memory*: ``cpu_s_per_msg`` is the servers' CPU time (user + system, from /proc) per
  message, and ``store_cpu_share`` = 1 - cpu(memory) / cpu(setup): the part of the server's work
  that the store and locks add (database and Redis servers' own CPU not counted).
  ``throughput_vs_memory`` is messages/s over the memory baseline's at the same point.

The servers are ``chatbot.server``'s application (``create_app``, the REST channel) started by
this module (``serve``), so the stores can be wrapped; they run without a rate limit, and with
``OMP_NUM_THREADS=1`` (``--torch-threads``; 0 leaves torch's default of a thread per core, which
on a busy 2-core machine costs the moodbot's LSTM step about 15 times the CPU).

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
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from sqlalchemy import make_url

from chatbot.store import ConversationStore, LockStore, StoredConversation
from chatbot.store.locks import Ticket
from training.benchmarks.store import DEFAULT_POSTGRES_URL, Result, postgres_url, quantile

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "domains" / "moodbot"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SETUPS = ("memory", "sqlite", "postgresql")
INTENTS = ("/greet", "/mood_great", "/goodbye")
WEBHOOK = "/webhooks/rest/webhook"
START_TIMEOUT = 120.0
WARM_UP_MESSAGES = 30
# Messages of one conversation, then the client starts another: a turn loads and replays the
# conversation's last session, so every point has conversations of the same lengths.
CONVERSATION_LENGTH = 20
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120.0)


# ------------------------------------------------------------------ the server side: timed stores


@dataclass
class Timers:
    """Seconds spent awaiting each store call, and how many calls, since the last reset."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


class TimedStore(ConversationStore):
    """A conversation store that times its ``load`` and ``append`` calls."""

    def __init__(self, inner: ConversationStore, timers: Timers) -> None:
        self.inner = inner
        self.timers = timers

    async def start(self) -> None:
        await self.inner.start()

    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        started = time.perf_counter()
        try:
            return await self.inner.load(conversation_id, all_sessions=all_sessions)
        finally:
            self.timers.add("store_load", time.perf_counter() - started)

    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        started = time.perf_counter()
        try:
            await self.inner.append(conversation_id, events, start_seq=start_seq)
        finally:
            self.timers.add("store_append", time.perf_counter() - started)

    async def conversation_ids(self) -> list[str]:
        return await self.inner.conversation_ids()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


class TimedLocks(LockStore):
    """A lock store that times ``acquire`` (waiting included) and ``release``."""

    def __init__(self, inner: LockStore, timers: Timers) -> None:
        self.inner = inner
        self.timers = timers

    async def acquire(self, conversation_id: str) -> Ticket:
        started = time.perf_counter()
        try:
            return await self.inner.acquire(conversation_id)
        finally:
            self.timers.add("lock_acquire", time.perf_counter() - started)

    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        started = time.perf_counter()
        try:
            await self.inner.release(conversation_id, ticket)
        finally:
            self.timers.add("lock_release", time.perf_counter() - started)

    async def queue_length(self, conversation_id: str) -> int:
        return await self.inner.queue_length(conversation_id)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def serve(model: Path, endpoints_path: Path, port: int) -> None:
    """One server: the REST channel of ``create_app`` with timed stores, plus
    ``GET /bench/timings`` and ``POST /bench/reset``."""
    from aiohttp import web

    from chatbot.agent import Agent, TrainedModel
    from chatbot.server.app import create_app, read_endpoints
    from chatbot.server.settings import ServerSettings
    from chatbot.store.factory import create_lock_store, create_store

    timers = Timers()
    endpoints = read_endpoints(PROJECT, endpoints_path)
    store = TimedStore(create_store(endpoints.tracker_store, default_sqlite_path=None), timers)
    locks = TimedLocks(create_lock_store(endpoints.lock_store), timers)
    agent = Agent(TrainedModel.from_file(model), store=store, locks=locks)
    settings = ServerSettings(project_dir=PROJECT, host="127.0.0.1", port=port, rate_limit=None)
    app = create_app(agent, settings)

    async def timings(request: web.Request) -> web.Response:
        return web.json_response({"seconds": timers.seconds, "calls": timers.calls})

    async def reset(request: web.Request) -> web.Response:
        timers.reset()
        return web.json_response({})

    app.router.add_get("/bench/timings", timings)
    app.router.add_post("/bench/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ------------------------------------------------------------------------------ server processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_server(
    model: Path, endpoints: Path, folder: Path, index: int, torch_threads: int
) -> ServerProcess:
    port = free_port()
    log = folder / f"server-{index}.log"
    command = [sys.executable, "-m", "training.benchmarks.rest_store", "serve"]
    command += ["--model", str(model), "--endpoints", str(endpoints), "--port", str(port)]
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    if torch_threads:
        env["OMP_NUM_THREADS"] = str(torch_threads)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(port, process, log)
    give_up = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < give_up and process.poll() is None:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(f"{server.url}/webhooks/rest/") as response:
                    if response.status == 200:
                        return server
            await asyncio.sleep(0.05)
    await stop_server(server)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the benchmark server did not start on port {port}:\n{tail}")


async def stop_server(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        give_up = time.monotonic() + 30
        while server.process.poll() is None and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@contextlib.asynccontextmanager
async def servers_running(
    count: int, model: Path, endpoints: Path, folder: Path, torch_threads: int
) -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            started.append(await start_server(model, endpoints, folder, index, torch_threads))
        yield started
    finally:
        await asyncio.gather(*(stop_server(server) for server in started))


# -------------------------------------------------------------------------------- the clients


@dataclass
class Point:
    messages: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


async def send_messages(
    session: aiohttp.ClientSession,
    servers: list[ServerProcess],
    concurrency: int,
    seconds: float,
    max_messages: int,
    prefix: str,
) -> tuple[Point, float]:
    """``concurrency`` clients, each a conversation of ``CONVERSATION_LENGTH`` messages after
    another; a conversation sticks to one server, the next one goes to the next server."""
    loop = asyncio.get_running_loop()
    point = Point()
    deadline = loop.time() + seconds

    async def client(worker: int) -> None:
        n = 0
        while loop.time() < deadline and point.messages + point.errors < max_messages:
            number = worker + n // CONVERSATION_LENGTH * concurrency
            server = servers[number % len(servers)]
            conversation_id = f"{prefix}-{number}"
            body = {"sender": conversation_id, "message": INTENTS[n % len(INTENTS)]}
            started = time.perf_counter()
            try:
                async with session.post(f"{server.url}{WEBHOOK}", json=body) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            if ok:
                point.messages += 1
                point.latencies.append(time.perf_counter() - started)
            else:
                point.errors += 1
            n += 1

    started = loop.time()
    await asyncio.gather(*(client(worker) for worker in range(concurrency)))
    return point, loop.time() - started


async def measure(
    servers: list[ServerProcess], concurrency: int, seconds: float, max_messages: int
) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        for server in servers:
            async with session.post(f"{server.url}/bench/reset") as response:
                response.raise_for_status()
        cpu_before = [cpu_seconds(server.process.pid) for server in servers]
        prefix = f"bench-{secrets.token_hex(3)}-c{concurrency}"
        point, elapsed = await send_messages(
            session, servers, concurrency, seconds, max_messages, prefix
        )
        cpu_after = [cpu_seconds(server.process.pid) for server in servers]
        timers: dict[str, float] = {}
        for server in servers:
            async with session.get(f"{server.url}/bench/timings") as response:
                for name, value in (await response.json())["seconds"].items():
                    timers[name] = timers.get(name, 0.0) + value
    messages = max(point.messages, 1)
    mean_latency = sum(point.latencies) / messages
    store_s = (timers.get("store_load", 0.0) + timers.get("store_append", 0.0)) / messages
    lock_s = (timers.get("lock_acquire", 0.0) + timers.get("lock_release", 0.0)) / messages
    figures: dict[str, float] = {
        "messages_per_s": round(point.messages / elapsed, 1),
        "latency_mean_s": round(mean_latency, 5),
        "latency_p50_s": round(quantile(point.latencies, 0.5), 5),
        "latency_p99_s": round(quantile(point.latencies, 0.99), 5),
        "store_s_per_msg": round(store_s, 5),
        "lock_s_per_msg": round(lock_s, 5),
        "store_share": round(store_s / mean_latency, 3) if mean_latency else 0.0,
        "lock_share": round(lock_s / mean_latency, 3) if mean_latency else 0.0,
    }
    cpu = [
        after - before
        for before, after in zip(cpu_before, cpu_after, strict=True)
        if before is not None and after is not None
    ]
    if len(cpu) == len(servers):
        figures["cpu_s_per_msg"] = round(sum(cpu) / messages, 5)
    figures.update(
        {
            "messages": point.messages,
            "errors": point.errors,
            "seconds": round(elapsed, 2),
            # Other work on the machine depresses these figures; this says how much there was.
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
    )
    return figures


async def warm_up(servers: list[ServerProcess]) -> None:
    """A few messages per server first: the first turns of a process pay for lazy set-up."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        await send_messages(
            session,
            servers,
            4 * len(servers),
            60.0,
            WARM_UP_MESSAGES * len(servers),
            f"warm-{secrets.token_hex(3)}",
        )


# ------------------------------------------------------------------------------------ setups


def redis_block(url: str, prefix: str) -> dict[str, Any]:
    """A Rasa ``lock_store:`` block for Redis at ``url`` (``redis://[:password@]host:port/db``)."""
    parts = urlsplit(url)
    block: dict[str, Any] = {"type": "redis", "url": parts.hostname or "127.0.0.1"}
    block["port"] = parts.port or 6379
    if parts.path.strip("/"):
        block["db"] = int(parts.path.strip("/"))
    if parts.password:
        block["password"] = parts.password
    if prefix:
        block["key_prefix"] = prefix
    return block


def postgres_block(url: str) -> dict[str, Any]:
    """A Rasa ``tracker_store:`` block for the PostgreSQL database at the SQLAlchemy ``url``."""
    pg = make_url(url)
    block: dict[str, Any] = {
        "type": "sql",
        "dialect": "postgresql",
        "url": pg.host or "127.0.0.1",
        "port": pg.port or 5432,
        "db": pg.database,
    }
    if pg.username:
        block["username"] = pg.username
    if pg.password:
        block["password"] = pg.password
    return block


async def redis_reachable(url: str) -> str | None:
    """None when Redis answers a PING, else why not."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as error:  # any failure means: skip the setups that need it
        return str(error) or type(error).__name__
    finally:
        await client.aclose()
    return None


async def delete_redis_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def tracker_block(setup: str, args: argparse.Namespace, folder: Path) -> AsyncIterator[Any]:
    if setup == "memory":
        yield {"type": "in_memory"}
    elif setup == "sqlite":
        yield {"type": "sql", "dialect": "sqlite", "db": str(folder / "conversations.db")}
    else:
        async with postgres_url(args.postgres_url) as url:
            yield postgres_block(url)


@contextlib.asynccontextmanager
async def endpoints_file(
    setup: str, processes: int, args: argparse.Namespace, folder: Path, prefix: str
) -> AsyncIterator[Path]:
    """endpoints.yml for a setup: its ``tracker_store:``, and Redis locks where two processes
    share the store or the store is PostgreSQL."""
    import yaml

    async with tracker_block(setup, args, folder) as block:
        endpoints: dict[str, Any] = {"tracker_store": block}
        if needs_redis(setup, processes):
            endpoints["lock_store"] = redis_block(args.redis_url, prefix)
        path = folder / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        yield path


def needs_redis(setup: str, processes: int) -> bool:
    return setup == "postgresql" or (setup == "sqlite" and processes > 1)


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
            endpoints_file(setup, processes, args, folder, prefix) as endpoints,
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
