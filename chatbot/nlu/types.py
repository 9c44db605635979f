"""Rasa's parse data, as JSON: what ``NLUModel.parse`` returns and ``/model/parse`` serves."""

from __future__ import annotations

from typing import TypedDict


class IntentPrediction(TypedDict):
    name: str | None
    confidence: float


class _EntityRequired(TypedDict):
    entity: str
    start: int
    end: int
    value: str
    confidence_entity: float
    extractor: str  # "BiLSTMCRF" or "RegexEntityExtractor"


class EntityPrediction(_EntityRequired, total=False):
    role: str
    confidence_role: float
    group: str
    confidence_group: float
    processors: list[str]  # ["EntitySynonymMapper"] when a synonym replaced the value


class ResponseRanking(TypedDict):
    intent_response_key: str  # "faq/ask_name"
    confidence: float


class SelectedResponse(TypedDict):
    intent_response_key: str
    confidence: float
    utter_action: str  # "utter_faq/ask_name"


class RetrievalPrediction(TypedDict):
    response: SelectedResponse
    ranking: list[ResponseRanking]


class _ParseRequired(TypedDict):
    text: str
    intent: IntentPrediction
    entities: list[EntityPrediction]
    intent_ranking: list[IntentPrediction]


class ParseResult(_ParseRequired, total=False):
    # {"all_retrieval_intents": ["faq"], "faq": RetrievalPrediction}; absent without retrieval
    # intents. A TypedDict cannot mix the list key with per-intent keys, hence the plain dict.
    response_selector: dict[str, object]
