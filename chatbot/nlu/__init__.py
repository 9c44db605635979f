"""Natural language understanding: text in, Rasa's parse data (intent, entities) out.

The model is a BiLSTM-CRF: a bidirectional LSTM over word, character, lexical and regex/lookup
features, shared by an intent head and a CRF entity tagger. Training it is ``training.nlu``.
"""

from chatbot.nlu.model import NLU_FALLBACK, Labels, NLUModel
from chatbot.nlu.settings import NLUSettings
from chatbot.nlu.tokenizer import Token, tokenize
from chatbot.nlu.types import (
    EntityPrediction,
    IntentPrediction,
    ParseResult,
    ResponseRanking,
    RetrievalPrediction,
    SelectedResponse,
)

__all__ = [
    "NLU_FALLBACK",
    "EntityPrediction",
    "IntentPrediction",
    "Labels",
    "NLUModel",
    "NLUSettings",
    "ParseResult",
    "ResponseRanking",
    "RetrievalPrediction",
    "SelectedResponse",
    "Token",
    "tokenize",
]
