"""Comparing NLU pipelines on less and less training data, as Rasa's
``rasa test nlu --config a.yml b.yml --runs 3 --percentages 0 25 50 75`` does.

Each run holds out a fifth of each intent's examples as its test set (a new split each run,
``test.yml`` in ``run_<n>/``), then, for each percentage, leaves that share of each intent's
remaining examples out of training (``run_<n>/<p>%_exclusion/train.yml``) and trains every
pipeline on what is left, scoring it on the run's test set (the full reports in
``<p>%_exclusion/<config>_report/``). ``results.json`` holds each pipeline's intent F1
(label-weighted, as Rasa's) per run and percentage, Rasa's shape (``{config: [[f1 per
percentage] per run]}``); ``nlu_model_comparison_graph.pdf`` draws them against the number of
training examples (of the first run, as Rasa's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ConfigError
from chatbot.project.config import ComponentConfig
from chatbot.project.nlu_writer import nlu_yaml
from chatbot.project.training_data import NLUData
from training.nlu.evaluate import DEFAULT_REPORTS, ReportOptions, evaluate_nlu, split_examples
from training.nlu.plots import comparison_graph

RESULTS_FILE = "results.json"
GRAPH_FILE = "nlu_model_comparison_graph.pdf"
TEST_SHARE = 0.2


def compare_pipelines(
    data: NLUData,
    pipelines: Mapping[str, Sequence[ComponentConfig]],
    out_dir: Path,
    *,
    runs: int = 3,
    percentages: Sequence[int] = (0, 25, 50, 75),
    seed: int = 42,
    options: ReportOptions = DEFAULT_REPORTS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train and score every pipeline on each run's split, at each percentage left out;
    returns ``{"results": {config: [[f1, ...], ...]}, "examples": [n per percentage]}``."""
    from training.nlu.trainer import train_nlu

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    wrong = [p for p in percentages if not 0 <= p < 100]
    if wrong or not percentages:
        raise ConfigError(f"each percentage must be from 0 to 99, got {list(percentages)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[list[float]]] = {name: [[] for _ in range(runs)] for name in pipelines}
    examples: list[int] = []
    for run in range(runs):
        run_dir = out_dir / f"run_{run + 1}"
        run_dir.mkdir(exist_ok=True)
        train, test = split_examples(data.examples, TEST_SHARE, seed + run)
        (run_dir / "test.yml").write_text(_yaml(data, test), encoding="utf-8")
        for percentage in percentages:
            included = (
                split_examples(train, percentage / 100, seed + run)[0] if percentage else train
            )
            if run == 0:
                examples.append(len(included))
            part_dir = run_dir / f"{percentage}%_exclusion"
            part_dir.mkdir(exist_ok=True)
            (part_dir / "train.yml").write_text(_yaml(data, included), encoding="utf-8")
            training = NLUData(
                included, dict(data.synonyms), list(data.regexes), list(data.lookups)
            )
            for name, pipeline in pipelines.items():
                progress(
                    f"run {run + 1}/{runs}, {percentage}% left out ({len(included)} examples): "
                    f"{name}"
                )
                model = train_nlu(training, pipeline, seed=seed + run, show_progress=False)
                summary = evaluate_nlu(model, test, part_dir / f"{name}_report", options)
                intent: dict[str, float] = summary["intent"]  # type: ignore[assignment]
                results[name][run].append(float(intent["weighted_f1"]))
    write_comparison(
        out_dir,
        results,
        examples,
        GRAPH_FILE if options.plots else None,
        what="label-weighted average intent F1 on the test set",
        sized_by="number of intent examples present during training",
    )
    return {"results": results, "examples": examples}


def write_comparison(
    out_dir: Path,
    results: dict[str, list[list[float]]],
    sizes: Sequence[int],
    graph: str | None,
    *,
    what: str,
    sized_by: str,
) -> None:
    """``results.json`` (Rasa's shape) and, unless ``graph`` is None, the graph of a comparison
    (this one, and the policy configs' in ``training.compare_core``)."""
    (out_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2), encoding="utf-8")
    if graph is not None:
        comparison_graph(sizes, results, out_dir / graph, what=what, sized_by=sized_by)


def _yaml(data: NLUData, examples: Sequence[Any]) -> str:
    """The examples as an nlu.yml, with the data's synonyms, regexes and lookup tables."""
    return nlu_yaml(data, examples=examples)
