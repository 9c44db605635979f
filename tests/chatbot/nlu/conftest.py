from __future__ import annotations

import pytest

from chatbot.nlu import NLUModel
from tests.chatbot.nlu.toy import toy_data
from training.nlu import train_nlu


@pytest.fixture(scope="session")
def toy_model() -> NLUModel:
    """The toy bot's model with the default pipeline (trained once, a second or two)."""
    return train_nlu(toy_data(), [], seed=7, show_progress=False)
