"""chatbot: train Rasa 3.x style bots into one model file and serve them.

``from chatbot import Agent`` imports the runtime lazily, so ``import chatbot`` (and the CLI's
``--help``) stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Agent", "TrainedModel", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Agent", "TrainedModel"):
        from chatbot import agent

        return getattr(agent, name)
    raise AttributeError(f"module 'chatbot' has no attribute {name!r}")
