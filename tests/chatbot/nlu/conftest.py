from __future__ import annotations

import pytest

from chatbot.nlu import NLUModel
from tests.chatbot.nlu.toy import trained_toy_model


@pytest.fixture
def toy_model() -> NLUModel:
    """The toy bot's model (default pipeline), trained once for the whole test run."""
    return trained_toy_model()
