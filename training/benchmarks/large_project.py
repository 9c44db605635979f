"""A Rasa-sized project end to end: validating, training and serving it, with time and memory.

The example bots are small; a grown assistant has hundreds of intents, thousands of NLU
examples, hundreds of stories, slots and responses. This generates one of such a size
(``_large_project_data``: XS 15 intents and 12 stories, S 55 / 1,700 examples / 400 stories, M
205 / 12,300 / 1,000, L 505 / 29,900 / 2,000; seeded, so every run has the same files) and runs
the commands a user runs, each as a process of its own, as they run it:

1. ``chatbot data validate``: wall and CPU seconds, peak RSS, the warnings it counts;
2. ``chatbot train``: wall and CPU seconds (its children's included) and peak RSS of the
   process; the NLU's fitting seconds as its log says them (before them: Python starting, the
   project read and checked, the features made), the policies' from that line to the
   policies' last line, or, where they train in a second process beside the NLU
   (``parallel``), from the line saying so (the model's saving after both), each with the
   largest RSS sampled (every 0.05 s, the process and its children together) while it ran;
   the model file's size;
3. ``chatbot run`` on 127.0.0.1: seconds from the process's start to its first answer over REST,
   then ``--messages`` texts in turn (an intent's words and a filler, parsed by the NLU, a new
   conversation every 6): latency p50 / p95 / max, the share answered with the intent's
   response, the server's CPU seconds and RSS after them.

    python -m training.benchmarks.large_project --size S [--epochs N] [--out DIR]
        [--messages 300] [--timeout 3600]

``--epochs`` sets DIET's and TED's (default: the 100 of ``chatbot init``'s config). Everything is
written in a temporary folder unless ``--out`` (then the project, the model and each command's
log stay there). Every command is bounded by ``--timeout`` seconds (killed after: its
``exit_code`` is null); a failed step stops the run. Prints one JSON object per result on its
own line (seconds, bytes, fractions, the 1-minute load average).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import IO, Any

import aiohttp

from training.benchmarks._large_project_data import SIZES, GeneratedProject, generate
from training.benchmarks._servers import ServerProcess, cpu_seconds, free_port, stop_server
from training.benchmarks._stats import quantile

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
SAMPLE_EVERY = 0.05  # seconds between RSS samples of a command
START_TIMEOUT = 300.0  # seconds `chatbot run` may take to answer a first message
REQUEST_TIMEOUT = 30.0
CONVERSATION_TURNS = 6
NLU_DONE = re.compile(r"trained NLU \(.*\) in ([0-9.]+) s")
POLICY_DONE = re.compile(r"LSTMPolicy: \d+ epochs")
BESIDE = re.compile(r"training the dialogue policies in a second process")
SEQUENCES = re.compile(r"-> (\d+) training sequences")
WARNINGS = re.compile(r"\((\d+) warning\(s\)\)")


@dataclass
class Finished:
    """One command's run: its output lines with the second each arrived, and what it cost."""

    exit_code: int | None  # None: killed at the timeout
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    rss_samples: list[tuple[float, int, bool]] = field(default_factory=list)  # at, RSS, alone

    def first(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        for at, line in self.lines:
            match = pattern.search(line)
            if match:
                return at, match
        return None

    def last(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        found = [(at, m) for at, line in self.lines if (m := pattern.search(line))]
        return found[-1] if found else None

    def peak_between(self, start: float, end: float) -> int | None:
        """The largest RSS sampled in ``[start, end]`` (the process and its children together,
        as `chatbot train` trains the policies in a process of its own beside the NLU); a
        process alone is at most its peak (a sample can read a few pages above the kernel's
        high-water mark)."""
        sampled = [(rss, alone) for at, rss, alone in self.rss_samples if start <= at <= end]
        if not sampled:
            return None
        peak = max(rss for rss, _ in sampled)
        return min(peak, self.peak_rss_bytes) if all(alone for _, alone in sampled) else peak


def child_env() -> dict[str, str]:
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def rss_bytes(pid: int) -> int | None:
    """A process's resident memory now (Linux), None where it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def tree_rss_bytes(pid: int) -> tuple[int, bool] | None:
    """The resident memory of a process and its descendants now (Linux), and whether it had
    none; None where the process's own cannot be read."""
    own = rss_bytes(pid)
    if own is None:
        return None
    total, pending, alone = own, [pid], True
    while pending:
        parent = pending.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                for child in (task / "children").read_text().split():
                    alone = False
                    pending.append(int(child))
                    total += rss_bytes(int(child)) or 0
    return total, alone


def run_command(args: list[str], log: Path, timeout: float) -> Finished:
    """Run ``chatbot <args>`` to its end or ``timeout``, its output to ``log``; the CPU time and
    peak RSS are its own (``wait4``), not those of other children of this process."""
    command = [sys.executable, "-m", "chatbot", *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        start_new_session=True,  # its own group: killed whole at the timeout
    )
    assert process.stdout is not None
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=_read_lines, args=(process.stdout, log, started, lines))
    reader.start()
    samples: list[tuple[float, int, bool]] = []
    killed = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter() - started
        rss = tree_rss_bytes(process.pid)
        if rss is not None:
            samples.append((now, *rss))
        if now > timeout and not killed:
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
        time.sleep(SAMPLE_EVERY)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    reader.join()
    process.stdout.close()
    return Finished(
        exit_code=None if killed else process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # kilobytes on Linux
        lines=lines,
        rss_samples=samples,
    )


def _read_lines(
    stream: IO[bytes], log: Path, started: float, lines: list[tuple[float, str]]
) -> None:
    with log.open("w") as out:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append((time.perf_counter() - started, line))
            out.write(line + "\n")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def validate(project: GeneratedProject, logs: Path, timeout: float) -> dict[str, Any]:
    done = run_command(
        ["data", "validate", "--project", str(project.root)], logs / "validate.log", timeout
    )
    warned = done.last(WARNINGS)
    return {
        "exit_code": done.exit_code,
        "wall_s": round(done.wall_s, 2),
        "cpu_s": round(done.cpu_s, 2),
        "peak_rss_bytes": done.peak_rss_bytes,
        "warnings": int(warned[1].group(1)) if warned else 0,
    }


def train(project: GeneratedProject, models: Path, logs: Path, timeout: float) -> dict[str, Any]:
    args = ["train", "--project", str(project.root), "--out", str(models), "--quiet", "--force"]
    done = run_command(args, logs / "train.log", timeout)
    figures: dict[str, Any] = {
        "exit_code": done.exit_code,
        "wall_s": round(done.wall_s, 2),
        "cpu_s": round(done.cpu_s, 2),
        "peak_rss_bytes": done.peak_rss_bytes,
    }
    nlu = done.first(NLU_DONE)
    core = done.last(POLICY_DONE)
    beside = done.first(BESIDE)  # the policies train in a second process, beside the NLU
    figures["parallel"] = beside is not None
    if nlu is not None:
        figures["nlu_s"] = float(nlu[1].group(1))
        # Python and torch starting, the project read and checked, the NLU's features made.
        figures["before_nlu_s"] = round(nlu[0] - figures["nlu_s"], 2)
        figures["nlu_peak_rss_bytes"] = done.peak_between(0.0, nlu[0])
    if nlu is not None and core is not None:
        start = beside[0] if beside is not None else nlu[0]
        figures["policies_s"] = round(core[0] - start, 2)
        figures["policies_peak_rss_bytes"] = done.peak_between(start, core[0])
        # Saving the model (and, beside, reading the policies' part back).
        figures["after_policies_s"] = round(done.wall_s - max(core[0], nlu[0]), 2)
    figures["peak_tree_rss_bytes"] = done.peak_between(0.0, done.wall_s)
    sequences = done.first(SEQUENCES)
    if sequences is not None:
        figures["training_sequences"] = int(sequences[1].group(1))
    written = sorted(models.glob("*.model"), key=lambda path: path.stat().st_mtime)
    if done.exit_code == 0 and written:
        figures["model_bytes"] = written[-1].stat().st_size
        figures["model"] = str(written[-1])
    return figures


async def post(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> Any:
    body = {"sender": sender, "message": text}
    async with session.post(f"{url}/webhooks/rest/webhook", json=body) as response:
        response.raise_for_status()
        return await response.json()


async def first_answer(session: aiohttp.ClientSession, server: ServerProcess) -> float:
    """Seconds from the server process's start until it answered a first text message."""
    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT and server.process.poll() is None:
        with contextlib.suppress(aiohttp.ClientConnectionError, asyncio.TimeoutError):
            await post(session, server.url, "warm-up", "hello")
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    tail = "\n".join(server.log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"chatbot run did not answer on port {server.port}:\n{tail}")


async def serve(
    project: GeneratedProject, model: Path, logs: Path, messages: int
) -> dict[str, Any]:
    """Start ``chatbot run`` (the clock starts with the process), then send the messages in
    turn, each awaited before the next."""
    port = free_port()
    args = ["run", "--project", str(project.root), "--model", str(model)]
    args += ["--host", LOOPBACK, "--port", str(port), "--rate-limit", "off"]
    log = logs / "run.log"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "chatbot", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        server = ServerProcess(port, process, log)
        try:
            startup = await first_answer(session, server)
            rss_at_start = rss_bytes(process.pid)
            cpu_before = cpu_seconds(process.pid) or 0.0
            rng = Random(7)
            latencies: list[float] = []
            expected = errors = 0
            for index in range(messages):
                text, answer_holds = rng.choice(project.probes)
                sender = f"user-{index // CONVERSATION_TURNS}"
                started = time.perf_counter()
                try:
                    answer = await post(session, server.url, sender, text)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if any(answer_holds in (m.get("text") or "") for m in answer):
                    expected += 1
            cpu_after = cpu_seconds(process.pid) or 0.0
            rss_after = rss_bytes(process.pid)
        finally:
            await stop_server(server)
    return {
        "first_answer_s": round(startup, 3),
        "rss_bytes_at_first_answer": rss_at_start,
        "messages": messages,
        "errors": errors,
        "p50_s": round(quantile(latencies, 0.5), 5),
        "p95_s": round(quantile(latencies, 0.95), 5),
        "max_s": round(max(latencies, default=0.0), 5),
        "answered_as_expected": round(expected / messages, 4) if messages else None,
        "server_cpu_s_per_message": round((cpu_after - cpu_before) / max(1, messages), 5),
        "rss_bytes_after": rss_after,
    }


def folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def bench(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """Generate, validate, train and serve; a step that fails ends the list with its result."""
    root, logs, models = folder / f"project-{args.size}", folder / "logs", folder / "models"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    project = generate(root, args.size, epochs=args.epochs)
    generated = {
        **project.counts,
        "epochs": args.epochs,
        "generate_s": round(time.perf_counter() - started, 2),
        "project_bytes": folder_bytes(root),
    }
    head = {"size": args.size}
    results = [{"name": "large_project.project", **head, **generated}]
    _say(results[-1])
    steps = [
        ("validate", lambda: validate(project, logs, args.timeout)),
        ("train", lambda: train(project, models, logs, args.timeout)),
    ]
    for step, measure in steps:
        figures = measure()
        results.append({"name": f"large_project.{step}", **head, **figures})
        results[-1]["loadavg_1m"] = load_average()
        _say(results[-1])
        if figures["exit_code"] != 0:
            return results
    model = Path(results[-1].pop("model"))
    serving = serve(project, model, logs, args.messages)
    try:
        served = asyncio.run(asyncio.wait_for(serving, args.timeout))
    except (RuntimeError, asyncio.TimeoutError) as error:  # reported as the step's result
        served = {"error": str(error) or f"timed out after {args.timeout} s"}
    results.append({"name": "large_project.serve", **head, **served, "loadavg_1m": load_average()})
    return results


def _say(result: dict[str, Any]) -> None:
    """Progress on stderr: the step's figures as they come (the JSON lines come at the end)."""
    print(f"{result['name']}: {result}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="S")
    parser.add_argument("--epochs", type=int, default=100, help="DIET's and TED's epochs")
    parser.add_argument("--out", type=Path, default=None, help="keep everything in this folder")
    parser.add_argument("--messages", type=int, default=300, help="REST messages after startup")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds each step may take")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.messages < 1:
        parser.error("--epochs and --messages must be at least 1")
    if args.out is not None:
        results = bench(args, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="large-project-") as folder:
            results = bench(args, Path(folder))
    for result in results:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
