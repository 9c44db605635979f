"""Training and evaluating the NLU model (``chatbot.nlu``)."""

from __future__ import annotations

from typing import Any

from training.nlu.pipeline import COMPONENTS, settings_from_pipeline

__all__ = ["COMPONENTS", "settings_from_pipeline", "train_nlu"]


def __getattr__(name: str) -> Any:
    """``train_nlu`` imports torch: it is loaded when asked for, so that checking a pipeline
    (``chatbot train`` finding nothing to train) does not load torch."""
    if name == "train_nlu":
        from training.nlu.trainer import train_nlu

        return train_nlu
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
