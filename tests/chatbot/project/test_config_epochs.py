"""An epoch count beyond any real training (a typing slip: ``epochs: 1000000000000``) is an
error when config.yml is read, naming the component, the line and the bound: such a training
would never end (the NLU's warm-up, a share of the steps, kept it from learning too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.config_reader import MAX_EPOCHS, read_config

from .conftest import write


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "pipeline:\n  - name: DIETClassifier\n    epochs: 1000000000000\n",
            3,
            "DIETClassifier: 'epochs' must be at most 100,000, got 1000000000000. No training "
            "needs more",
        ),
        (
            "policies:\n  - name: RulePolicy\n  - name: TEDPolicy\n    max_history: 5\n"
            "    epochs: 100001\n",
            5,
            "TEDPolicy: 'epochs' must be at most 100,000, got 100001",
        ),
        (
            "pipeline:\n  - name: BiLSTMCRF\n    min_epochs: 1e9\n",
            3,
            "BiLSTMCRF: 'min_epochs' must be at most 100,000, got 1000000000.0",
        ),
    ],
)
def test_an_epoch_count_beyond_the_bound_is_an_error(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    with pytest.raises(ProjectErrors) as info:
        read_config(write(tmp_path / "config.yml", text))
    [error] = info.value.errors
    assert f"config.yml:{line}: {needle}" in str(error)


@pytest.mark.parametrize("value", [MAX_EPOCHS, 300, 0, "many", True])
def test_epochs_up_to_the_bound_are_read_and_other_types_left_to_the_component(
    tmp_path: Path, value: object
) -> None:
    text = f"pipeline:\n  - name: DIETClassifier\n    epochs: {value}\n"
    config = read_config(write(tmp_path / "config.yml", text))
    assert config.pipeline[0].params["epochs"] == value
