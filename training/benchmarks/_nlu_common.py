"""Shared pieces of the NLU benchmarks: where the data is, pipelines, timing, result lines."""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from chatbot.nlu.model import NLUModel
from chatbot.project.config import ComponentConfig
from chatbot.project.training_data import EntityAnnotation, NLUExample
from training.nlu.metrics import bio_chunks

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$CHATBOT_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    path = Path(os.environ.get("CHATBOT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise SystemExit(f"benchmark data not found at {path}; set CHATBOT_DATA_DIR")
    return path


def pipeline(*, fallback: float | None = None, **params: Any) -> list[ComponentConfig]:
    """Rasa's default NLU pipeline, our model's settings in ``params``, fallback if given."""
    components = [
        ComponentConfig("WhitespaceTokenizer"),
        ComponentConfig("RegexFeaturizer"),
        ComponentConfig("LexicalSyntacticFeaturizer"),
        ComponentConfig("CountVectorsFeaturizer"),
        ComponentConfig(
            "CountVectorsFeaturizer", {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4}
        ),
        ComponentConfig("BiLSTMCRF", params),
        ComponentConfig("EntitySynonymMapper"),
    ]
    if fallback is not None:
        components.append(
            ComponentConfig(
                "FallbackClassifier", {"threshold": fallback, "ambiguity_threshold": 0.0}
            )
        )
    return components


@contextmanager
def timed() -> Iterator[Callable[[], dict[str, float]]]:
    """``with timed() as took: ...``; ``took()``: wall and CPU seconds (the machine is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    end: list[tuple[float, float]] = []
    yield lambda: {
        "train_s": round((end[0][0] if end else time.perf_counter()) - wall, 1),
        "train_cpu_s": round((end[0][1] if end else time.process_time()) - cpu, 1),
    }
    end.append((time.perf_counter(), time.process_time()))


def parse_times_ms(model: NLUModel, texts: Sequence[str], limit: int = 1000) -> dict[str, float]:
    """Single-message parse times on one CPU thread, in ms: wall-clock median, 90th and 99th
    percentile, and the median CPU time (what the parse costs when the machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sample = list(texts[:limit])
        for text in sample[:20]:  # warm-up
            model.parse(text)
        wall, cpu = [], []
        for text in sample:
            start, start_cpu = time.perf_counter(), time.process_time()
            model.parse(text)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    finally:
        torch.set_num_threads(threads)
    wall.sort()
    return {
        "parse_ms_p50": round(statistics.median(wall), 3),
        "parse_ms_p90": round(wall[int(0.9 * (len(wall) - 1))], 3),
        "parse_ms_p99": round(wall[int(0.99 * (len(wall) - 1))], 3),
        "parse_cpu_ms_p50": round(statistics.median(cpu), 3),
    }


def setting(text: str) -> tuple[str, Any]:
    """``--set`` values: ``hidden=256`` -> ``("hidden", 256)``; a value that is not JSON stays a
    string."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def setup() -> None:
    """Warnings-only logging and one torch thread for the whole run (training already uses one):
    the benchmark machine is shared, and these models are too small to gain from more."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)


def machine_load() -> float:
    """The 1-minute load average: the machine is shared, so timings come with it."""
    return round(os.getloadavg()[0], 1)


def emit(result: dict[str, object]) -> None:
    """One result, one JSON line on stdout (the benchmarks' machine-readable output)."""
    print(json.dumps(result), flush=True)


def round_scores(result: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in result.items()}


# --------------------------------------------------------------- whitespace-tokenised BIO data


def bio_example(words: Sequence[str], tags: Sequence[str], intent: str) -> NLUExample:
    """An example from whitespace tokens with BIO tags: text joined by single spaces."""
    assert len(words) == len(tags), f"{len(words)} words, {len(tags)} tags"
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    text = " ".join(words)
    entities = []
    for kind, first, stop in sorted(bio_chunks(tags), key=lambda c: c[1]):
        start, end = starts[first], starts[stop - 1] + len(words[stop - 1])
        entities.append(EntityAnnotation(start, end, text[start:end], kind))
    return NLUExample(text, intent, tuple(entities))


def predicted_bio(words: Sequence[str], entities: Sequence[Mapping[str, Any]]) -> list[str]:
    """BIO tags on the whitespace tokens from predicted character spans."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    tags = ["O"] * len(words)
    for entity in sorted(entities, key=lambda e: e["start"]):
        covered = [
            i
            for i, s in enumerate(starts)
            if s < entity["end"] and s + len(words[i]) > entity["start"] and tags[i] == "O"
        ]
        for n, i in enumerate(covered):
            tags[i] = ("B-" if n == 0 else "I-") + entity["entity"]
    return tags
