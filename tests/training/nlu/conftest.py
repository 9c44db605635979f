from __future__ import annotations

import pytest

from chatbot.nlu import NLUModel
from tests.chatbot.nlu.toy import toy_data
from training.nlu import train_nlu


@pytest.fixture(scope="session")
def trained_toy() -> NLUModel:
    return train_nlu(toy_data(), [], seed=3, show_progress=False)
