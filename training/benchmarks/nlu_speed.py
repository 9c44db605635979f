"""NLU speed: training time of a tiny project, parse latency on one CPU thread, model loading.

    python -m training.benchmarks.nlu_speed [--seed 42] [--set NAME=VALUE ...]

The tiny project is 10 intents x 10 examples (with their entities) from HWU64's first fold, the
size of a new bot. Parse times: single messages: the fold's other utterances, a 10,000-character
message, and ``parse_async`` (a thread hop) next to ``parse``. Parsing runs in numpy, on one thread
for messages of a few tokens (OpenBLAS splits only larger products: the 10,000-character message's
input projections; ``OPENBLAS_NUM_THREADS=1`` keeps those on one too). Loading is
``NLUModel.from_export`` on the exported tensors (numpy arrays) and metadata.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import torch

from chatbot.nlu import NLUModel
from chatbot.project.training_data import NLUData
from training.benchmarks._nlu_common import (
    data_dir,
    emit,
    machine_load,
    parse_times_ms,
    pipeline,
    round_scores,
    setting,
    setup,
    timed,
)
from training.benchmarks.hwu64 import load_fold
from training.nlu import train_nlu

INTENTS, PER_INTENT = 10, 10


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def async_overhead_ms(model: NLUModel, texts: list[str]) -> dict[str, float]:
    """Median latency of ``await parse_async`` and of ``parse`` called on the loop."""
    direct, threaded = [], []
    for text in texts:
        start = time.perf_counter()
        model.parse(text)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        await model.parse_async(text)
        threaded.append(time.perf_counter() - start)
    return {"parse_ms_p50_on_loop": median_ms(direct), "parse_async_ms_p50": median_ms(threaded)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="a BiLSTMCRF setting NAME=VALUE"
    )
    args = parser.parse_args()
    params: dict[str, Any] = dict(args.set)
    setup()
    fold = load_fold(data_dir() / "hwu64" / "KFold_1" / "testset")
    intents = sorted({e.intent for e in fold})[:: len({e.intent for e in fold}) // INTENTS][
        :INTENTS
    ]
    tiny = [e for intent in intents for e in [x for x in fold if x.intent == intent][:PER_INTENT]]
    others = [e.text for e in fold if e not in tiny]
    with timed() as took:
        model = train_nlu(NLUData(examples=tiny), pipeline(fallback=0.3, **params), seed=args.seed)
    tensors, meta = model.export()
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        NLUModel.from_export(tensors, meta)
        loads.append(time.perf_counter() - start)
    torch.set_num_threads(1)
    long_text = (" ".join(others) * 10)[:10_000]
    long_times = []
    for _ in range(5):
        start = time.perf_counter()
        model.parse(long_text)
        long_times.append(time.perf_counter() - start)
    emit(
        round_scores(
            {
                "name": "nlu_speed",
                "model": f"tiny: {len(intents)} intents x {PER_INTENT} examples (HWU64)",
                "train_examples": len(tiny),
                "settings": params,
                "entity_types": len(model.entity_types),
                **took(),
                **parse_times_ms(model, others),
                **asyncio.run(async_overhead_ms(model, others[:300])),
                "parse_10000_chars_ms": median_ms(long_times),
                "load_ms": median_ms(loads),
                "tensor_mb": round(sum(t.nbytes for t in tensors.values()) / 1e6, 2),
                "seed": args.seed,
                "load_avg": machine_load(),
            }
        )
    )


if __name__ == "__main__":
    main()
