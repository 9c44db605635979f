"""The evaluation's figures, drawn with matplotlib's object API (no pyplot, no global state)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_TICK_LABELS = 80  # more labels than this and the axes show none
MAX_CELL_COUNTS = 25


def _save(fig: Figure, path: Path, dpi: float | None = None) -> None:
    """The figure laid out and written. Labels in a script the bundled font lacks (a Chinese
    bot's intents) are drawn as boxes without matplotlib's warning per character."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi if dpi is not None else "figure")


def confusion_matrix_png(matrix: np.ndarray, labels: Sequence[str], path: Path) -> None:
    n = len(labels)
    side = min(4 + 0.3 * n, 40)
    fig = Figure(figsize=(side, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, interpolation="nearest", cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(f"Intent confusion matrix ({int(matrix.sum())} messages)")
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    if n <= MAX_TICK_LABELS:
        ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
    if n <= MAX_CELL_COUNTS:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    color = "white" if matrix[i, j] > threshold else "black"
                    ax.text(
                        j, i, str(matrix[i, j]), ha="center", va="center", color=color, fontsize=8
                    )
    _save(fig, path, dpi=100)


def confidence_histogram_png(
    correct: Sequence[float], wrong: Sequence[float], path: Path, *, title: str = "Intent"
) -> None:
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = [i / 20 for i in range(21)]
    ax.hist(
        [list(correct), list(wrong)],
        bins=bins,
        color=["#009292", "#ff6db6"],
        label=[f"correct ({len(correct)})", f"wrong ({len(wrong)})"],
    )
    ax.set_title(f"{title} prediction confidence")
    ax.set_xlabel("confidence")
    ax.set_ylabel("number of messages")
    ax.legend()
    _save(fig, path, dpi=100)


def comparison_graph(
    sizes: Sequence[int],
    scores: dict[str, list[list[float]]],
    path: Path,
    *,
    what: str,
    sized_by: str,
) -> None:
    """Rasa's comparison graphs (``nlu_model_comparison_graph.pdf``,
    ``core_model_comparison_graph.pdf``): each config's score (the mean over the runs, the band
    one standard deviation) against the amount of training data."""
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, runs in scores.items():
        values = np.array(runs, dtype=float)  # (runs, sizes)
        mean, std = values.mean(axis=0), values.std(axis=0)
        ax.plot(sizes, mean, marker=".", label=name)
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
    runs_count = len(next(iter(scores.values())))
    ax.set_title(f"{what[0].upper()}{what[1:]} by training data ({runs_count} runs)")
    ax.set_xlabel(sized_by)
    ax.set_ylabel(what)
    ax.legend(loc="lower right")
    _save(fig, path)
