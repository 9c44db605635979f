"""A served model keeps numpy's BLAS on one thread (CHATBOT_BLAS_THREADS chooses otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import numpy  # loads its BLAS
from threadpoolctl import threadpool_info
from tests.chatbot.test_blas import tiny_runtime
before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
tiny_runtime()
after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
print(before, after)
"""


def tiny_runtime() -> object:
    import numpy as np

    from chatbot.dialogue.lstm_runtime import TrackerConfig, TrackerRuntime

    config = TrackerConfig(num_features=3, num_labels=2, embed_dim=2, hidden_size=2)
    weights = {
        "embed.weight": np.zeros((3, 2)),
        "embed_bias": np.zeros(2),
        "lstm.weight_ih_l0": np.zeros((8, 2)),
        "lstm.weight_hh_l0": np.zeros((8, 2)),
        "lstm.bias_ih_l0": np.zeros(8),
        "lstm.bias_hh_l0": np.zeros(8),
        "head.weight": np.zeros((2, 2)),
        "head.bias": np.zeros(2),
    }
    return TrackerRuntime(config, weights)


def run(env_threads: str | None) -> tuple[list[int], list[int]]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.pop("CHATBOT_BLAS_THREADS", None)
    if env_threads is not None:
        env["CHATBOT_BLAS_THREADS"] = env_threads
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().split("] [")
    parse = lambda text: [int(x) for x in text.strip("[]").split(",") if x.strip()]  # noqa: E731
    return parse(before), parse(after)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_a_served_model_puts_blas_on_one_thread_unless_told_otherwise() -> None:
    before, after = run(None)
    assert before and max(before) > 1  # numpy's own default: a thread per core
    assert after == [1] * len(after)
    assert run("0")[1] == before  # 0: BLAS's default left alone
