"""Comparing policy configs on fewer and fewer training stories, as Rasa's
``rasa test core --config a.yml b.yml --runs 3 --percentages 0 5 25 50 70 95`` does.

For each run and percentage, that share of the project's stories is left out of training (a
draw of its own each run; rules are always kept), every config's policies are trained on the
rest and the test stories are predicted turn by turn, as ``chatbot test`` does.
``results.json`` holds each config's number of correct test stories per run and percentage,
Rasa's shape (``{config: [[correct per percentage] per run]}``), and
``core_model_comparison_graph.pdf`` draws them against the number of stories trained on.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ConfigError
from chatbot.project.config import ComponentConfig
from chatbot.project.project import Project
from chatbot.project.stories import Story
from training.evaluate import evaluate_stories
from training.nlu.compare import write_comparison

GRAPH_FILE = "core_model_comparison_graph.pdf"
DEFAULT_PERCENTAGES = (0, 5, 25, 50, 70, 95)


def compare_policy_configs(
    project: Project,
    configs: Mapping[str, Sequence[ComponentConfig]],
    test_stories: Sequence[Story],
    out_dir: Path,
    *,
    runs: int = 3,
    percentages: Sequence[int] = DEFAULT_PERCENTAGES,
    seed: int = 42,
    plot: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train every config's policies on each share of the stories and count the test stories
    they get right; returns ``{"results": {config: [[correct, ...], ...]}, "stories": [n per
    percentage]}``."""
    from training.train import train_project

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    if not percentages or any(not 0 <= p < 100 for p in percentages):
        raise ConfigError(f"each percentage must be from 0 to 99, got {list(percentages)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[list[float]]] = {name: [[] for _ in range(runs)] for name in configs}
    counts: list[int] = []
    for run in range(runs):
        order = list(project.stories)
        random.Random(seed + run).shuffle(order)
        for percentage in percentages:
            kept = order[: round(len(order) * (100 - percentage) / 100)]
            if run == 0:
                counts.append(len(kept))
            for name, policies in configs.items():
                progress(
                    f"run {run + 1}/{runs}, {percentage}% of the stories left out "
                    f"({len(kept)} kept): {name}"
                )
                config = dataclasses.replace(project.config, policies=tuple(policies))
                variant = dataclasses.replace(project, stories=kept, config=config)
                model = train_project(variant, nlu=False, seed=seed + run, show_progress=False)
                evaluation = evaluate_stories(model, test_stories)
                results[name][run].append(sum(r.passed for r in evaluation.results))
    write_comparison(
        out_dir,
        results,
        counts,
        GRAPH_FILE if plot else None,
        what="number of correct test stories",
        sized_by="number of stories present during training",
    )
    return {"results": results, "stories": counts}
