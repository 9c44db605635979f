"""Training and evaluating the NLU model (``chatbot.nlu``)."""

from training.nlu.pipeline import COMPONENTS, settings_from_pipeline
from training.nlu.trainer import train_nlu

__all__ = ["COMPONENTS", "settings_from_pipeline", "train_nlu"]
