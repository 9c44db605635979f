"""Training time when part of a project changed: what reusing unchanged parts saves.

`chatbot train` takes each part (the NLU, the dialogue policies) whose inputs did not change
from a model already in its output folder (``training.reuse``). On a copy of an example bot
(default: domains/restaurant) this times, each as its own ``chatbot train`` process as a user
runs it:

1. a first training (nothing to reuse);
2. the same project again (both parts reused);
3. after a new story (the NLU reused, the policies trained);
4. after a new NLU example without entities (the policies reused, the NLU trained);
5. the last project with ``--force`` (both trained, for comparison with 3 and 4).

    .venv/bin/python -m training.benchmarks.train_reuse [--bot domains/moodbot]

Prints one JSON object per step: wall seconds of the command, CPU seconds of its process, and
which parts it reused (the 1-minute load average too, as the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STORY = (
    "\n- story: thanks at once (train_reuse)\n  steps:\n"
    "  - intent: thankyou\n  - action: utter_noworries\n"
)


def train(bot: Path, *extra: str) -> tuple[float, float, str]:
    """One `chatbot train`: (wall s, CPU s of the process, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "chatbot", "train", "--project", str(bot), "--quiet", *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"chatbot train failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def add_nlu_example(bot: Path) -> None:
    """A new example for the first intent of data/nlu.yml (no entities)."""
    path = bot / "data" / "nlu.yml"
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == "examples: |")
    indent = lines[at + 1][: len(lines[at + 1]) - len(lines[at + 1].lstrip())]
    lines.insert(at + 1, f"{indent}- well hello there my friend\n")
    path.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot", type=Path, default=REPO_ROOT / "domains" / "restaurant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="train-reuse-") as tmp:
        bot = Path(tmp) / args.bot.name
        shutil.copytree(args.bot, bot, ignore=shutil.ignore_patterns("models", "results"))
        steps: list[tuple[str, Any, tuple[str, ...]]] = [
            ("first training", None, ()),
            ("nothing changed", None, ()),
            ("a new story", lambda: _append(bot / "data" / "stories.yml", STORY), ()),
            ("a new NLU example", lambda: add_nlu_example(bot), ()),
            ("everything, --force", None, ("--force",)),
        ]
        for name, change, extra in steps:
            if change is not None:
                change()
            wall, cpu, output = train(bot, *extra)
            everything = "Nothing changed since" in output
            reused = [
                part
                for part, said in (("nlu", "NLU: nothing"), ("core", "dialogue policies: nothing"))
                if said in output or everything
            ]
            result = {
                "name": "train_reuse",
                "bot": args.bot.name,
                "step": name,
                "reused": reused,
                "train_s": round(wall, 2),
                "train_cpu_s": round(cpu, 2),
                "load_avg": round(os.getloadavg()[0], 1),
            }
            print(json.dumps(result), flush=True)


def _append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


if __name__ == "__main__":
    main()
