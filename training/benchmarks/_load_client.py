"""The REST benchmark's load client: ``concurrency`` clients send the moodbot's payload messages
to the servers, conversation by conversation, and ``measure`` turns what they saw, the servers'
store timings and CPU time into one point's figures."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field

import aiohttp

from training.benchmarks._servers import ServerProcess, cpu_seconds
from training.benchmarks._stats import quantile

INTENTS = ("/greet", "/mood_great", "/goodbye")
# The store calls the servers time (``_timed_store``), whose sum is ``store_s_per_msg``.
STORE_CALLS = ("next_seq", "load", "append")
WEBHOOK = "/webhooks/rest/webhook"
WARM_UP_MESSAGES = 30
# Messages of one conversation, then the client starts another, so every point has
# conversations of the same lengths (a turn that misses the server's cache loads and replays the
# conversation's last session; a hit reads only its row).
CONVERSATION_LENGTH = 20
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120.0)


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
    store_s = sum(timers.get(f"store_{call}", 0.0) for call in STORE_CALLS) / messages
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
