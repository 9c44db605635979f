"""The LSTM policy's settings as ``config.yml`` gives them, checked: no torch here, so that
``chatbot train`` checks a config (and finds that nothing needs training) without loading it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

from chatbot.dialogue.lstm_policy import DEFAULT_CACHE_SIZE
from chatbot.errors import TrainingError
from chatbot.project.config import ComponentConfig
from chatbot.ranges import ABOVE_0, AT_LEAST_0, AT_LEAST_1, SHARE, Range, out_of_range
from training.augmentation import DEFAULT_AUGMENTATION_FACTOR

logger = logging.getLogger("training.lstm")


@dataclass(frozen=True)
class LSTMSettings:
    """Everything ``config.yml`` can set for the LSTM policy (model and training)."""

    embed_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    feature_dropout: float = 0.1
    attention: bool = False
    attention_window: int = 16
    skip_input: bool = False
    max_history: int | None = None
    label_features: bool | None = None  # None: only when the domain has end-to-end bot texts
    label_weights: bool = True  # False (with label_features): labels scored by their words
    action_name_words: bool = False  # the parts of the previous action's name are features
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    validation_split: float = 0.1
    min_validation_stories: int = 50  # fewer stories: no held-out split, all epochs run
    patience: int = 5  # epochs without a better held-out accuracy before stopping
    # After training with held-out stories, train a new tracker (same seed) on every story for
    # the epochs the held-out stories chose: nothing is held out of the tracker that serves.
    # Costs about twice the training.
    refit: bool = False
    # At an equal held-out accuracy, a held-out loss this much lower (mean nats a target) is
    # progress; less is not (Keras's min_delta). A perfect held-out accuracy otherwise trains
    # on while the loss creeps towards 0: 47 epochs where 15 did (docs/benchmarks.md).
    min_delta: float = 1e-3
    augmentation_factor: int = DEFAULT_AUGMENTATION_FACTOR
    use_intent_ranking: bool = True
    cache_size: int = DEFAULT_CACHE_SIZE
    random_seed: int | None = None  # None: the seed training was started with
    priority: int = 1
    # An ensemble of this many trackers, trained one after the other with seeds seed, seed + 1,
    # ... (each its own held-out stories, glued stories, initial weights and batch order); the
    # next action's probabilities are their mean. Costs this many times the training and the
    # per-turn time. On bAbI task 6, three gave +0.8 to +1.0 per-response on tst over their
    # members' mean, and 0 to +0.6 on dev (docs/benchmarks.md, bAbI). 1: one tracker.
    ensemble_size: int = 1
    # Threads for training. The tracker's matrices are small: on a busy machine more threads
    # mostly wait for each other (1 thread was 10x faster than 2 on our 2-core CI machine).
    num_threads: int = 1


# Rasa's TEDPolicy/KerasPolicy names for our settings.
RASA_NAMES = {"drop_rate": "dropout", "drop_rate_dialogue": "dropout"}
_SETTING_NAMES = {f.name for f in fields(LSTMSettings)}


def settings_from_config(config: ComponentConfig, *, notices: bool = True) -> LSTMSettings:
    """The settings a policy entry of ``config.yml`` asks for; unknown (TED-only) keys are
    named in one info line (``notices``: the check before training says it, not the training
    again) and ignored, values of the wrong type are a TrainingError naming the key."""
    values: dict[str, Any] = {}
    ignored = sorted(k for k in config.params if RASA_NAMES.get(k, k) not in _SETTING_NAMES)
    if ignored and notices:
        logger.info(
            "%s: settings %s have no counterpart in the LSTM policy and are ignored",
            config.name,
            ", ".join(ignored),
        )
    for key, value in config.params.items():
        name = RASA_NAMES.get(key, key)
        if name not in _SETTING_NAMES:
            continue
        if name == "batch_size" and isinstance(value, list):
            value = value[0]  # Rasa's [min, max] increasing batch size: we keep one size
        values[name] = _coerce(config, key, name, value)
        wrong = out_of_range({name: values[name]}, _RANGES, {name: key})
        if wrong:
            raise TrainingError(f"{config.origin.prefix}{config.name}: {wrong[0]}")
    return LSTMSettings(**values)


# Each numeric setting's allowed range: a value outside is the user's mistake, named with its
# file and line, not a failure deep in training.
_RANGES: dict[str, Range] = {
    "embed_dim": AT_LEAST_1,
    "hidden_size": AT_LEAST_1,
    "num_layers": AT_LEAST_1,
    "dropout": SHARE,
    "feature_dropout": SHARE,
    "attention_window": AT_LEAST_1,
    "max_history": AT_LEAST_1,
    "epochs": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "learning_rate": ABOVE_0,
    "weight_decay": AT_LEAST_0,
    "validation_split": SHARE,
    "min_validation_stories": AT_LEAST_0,
    "patience": AT_LEAST_0,
    "min_delta": AT_LEAST_0,
    "augmentation_factor": AT_LEAST_0,
    "cache_size": AT_LEAST_0,
    "num_threads": AT_LEAST_1,
    "ensemble_size": AT_LEAST_1,
}


def _coerce(config: ComponentConfig, key: str, name: str, value: Any) -> Any:
    default = getattr(LSTMSettings(), name)
    if value is None and name in ("max_history", "label_features", "random_seed"):
        return None
    try:
        if isinstance(default, bool) or name == "label_features":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int) or name in ("max_history", "random_seed"):
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
        wanted = "int" if name in ("max_history", "random_seed") else type(default).__name__
        raise TrainingError(
            f"{config.origin.prefix}{config.name}: '{key}' must be "
            f"{'an' if wanted[0] in 'aeiou' else 'a'} {wanted}, got {value!r:.40}"
        ) from None
