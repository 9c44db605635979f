"""What taking a conversation's lock costs: CPU and wall time of one acquire + release, without
contention, for each lock store (in-process, the workers' lock file, Redis).

    python -m training.benchmarks.locks [--rounds 3000] [--redis-url redis://127.0.0.1:6379/0]

Each round takes and gives back the lock of one of 500 conversations in turn, in one task, so the
figure is the lock store's own cost per message (the Redis server's CPU not counted). Redis is
left out, with a line saying so, where it does not answer. Prints one JSON object per store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chatbot.store import InMemoryLockStore, LockStore
from training.benchmarks.services import DEFAULT_REDIS_URL, delete_redis_keys, redis_reachable

CONVERSATIONS = 500


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(name: str, store: LockStore, rounds: int) -> dict[str, Any]:
    for n in range(min(rounds, 200)):  # connections opened, scripts loaded
        conversation = f"warm-{n}"
        await store.release(conversation, await store.acquire(conversation))
    cpu, wall = _cpu(), time.perf_counter()
    for n in range(rounds):
        conversation = f"c{n % CONVERSATIONS}"
        await store.release(conversation, await store.acquire(conversation))
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    return {
        "name": f"locks.{name}",
        "rounds": rounds,
        "cpu_s_per_message": round(cpu / rounds, 7),
        "wall_s_per_message": round(wall / rounds, 7),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chatbot.store.file_lock import AVAILABLE, FileLockStore

    results = [await measure("in_memory", InMemoryLockStore(), args.rounds)]
    if AVAILABLE:
        with tempfile.TemporaryDirectory(prefix="chatbot-locks-") as folder:
            store = FileLockStore(Path(folder) / "conversations.lock")
            results.append(await measure("file", store, args.rounds))
            await store.close()
    problem = await redis_reachable(args.redis_url)
    if problem is not None:
        print(f"redis at {args.redis_url} left out: {problem}", file=sys.stderr)
        return results
    from chatbot.store.redis_lock import RedisLockStore

    prefix = f"chatbot-bench-locks:{secrets.token_hex(4)}:"
    redis = RedisLockStore(args.redis_url, key_prefix=prefix)
    try:
        results.append(await measure("redis", redis, args.rounds))
    finally:
        await redis.close()
        await delete_redis_keys(args.redis_url, prefix.rstrip(":"))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHATBOT_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    )
    args = parser.parse_args(argv)
    for result in asyncio.run(bench(args)):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
