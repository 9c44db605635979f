"""A training whose loss stops being a number (NaN or infinite) has diverged: its weights are
garbage, and a model saved from them answers nothing (every confidence NaN). Trainers stop with
this error instead, naming the part, the epoch and what to change."""

from __future__ import annotations

import torch

from chatbot.errors import TrainingError
from training.optim import Adam


def diverged(part: str, epoch: int, learning_rate: float) -> TrainingError:
    """The error a trainer raises when ``part``'s loss or weights became NaN or infinite."""
    return TrainingError(
        f"{part}: the training diverged in epoch {epoch} (the loss is no longer a finite "
        f"number): lower its learning_rate (now {learning_rate:g}) in config.yml"
    )


def optimizer_step(optimizer: Adam, part: str, epoch: int, learning_rate: float) -> None:
    """``optimizer.step()``; a step too large for float32 (a learning rate near 1e38: torch's
    "value cannot be converted to type float without overflow") is the same divergence."""
    try:
        optimizer.step()
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise diverged(part, epoch, learning_rate) from exc


def is_finite(module: torch.nn.Module) -> bool:
    """Whether every weight and buffer of ``module`` is a finite number."""
    return all(bool(torch.isfinite(value).all()) for value in module.state_dict().values())
