"""The evaluation's figures: written as PNG files, whatever script the intents are named in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.nlu.plots import confidence_histogram_png, confusion_matrix_png


def test_figures_of_a_chinese_bot_are_written_without_a_warning_per_character(
    tmp_path: Path,
) -> None:
    """The bundled font has no CJK glyphs: matplotlib warned once per character (pytest turns
    warnings into errors, so this fails where one escapes)."""
    matrix = np.array([[3, 1], [0, 2]])
    confusion_matrix_png(matrix, ["查询天气", "问候"], tmp_path / "matrix.png")
    confidence_histogram_png([0.9, 0.8], [0.4], tmp_path / "hist.png", title="意图")
    for name in ("matrix.png", "hist.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
