"""Benchmark servers in processes of their own: a free port on 127.0.0.1, a process's CPU time,
and starting and stopping ``rest_store serve`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
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


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and of the processes it started and still runs (the workers of
    ``chatbot run --workers``), as ``cpu_seconds``."""
    total = cpu_seconds(pid)
    if total is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        total += tree_cpu_seconds(int(child)) or 0.0
    return total


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
    """``rest_store serve`` on a free port, its output in ``folder/server-<index>.log``; returns
    when it answers, raises RuntimeError with the log's tail when it does not."""
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
    """SIGTERM, then SIGKILL if it has not stopped after 30 s."""
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
