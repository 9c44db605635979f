"""Rasa's parse data, as JSON: what ``NLUModel.parse`` returns and ``/model/parse`` serves, and
how a parser's ``parse_async`` runs its ``parse``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypedDict

# Messages up to this many characters are parsed on the event loop: well under a millisecond,
# less than a hop to a worker thread costs on a busy machine. Longer ones go to a worker thread.
INLINE_PARSE_CHARS = 200


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


async def parse_off_the_loop_if_long(parse: Callable[[str], ParseResult], text: str) -> ParseResult:
    """``parse(text)`` without holding up the event loop for long: a message longer than
    ``INLINE_PARSE_CHARS`` is parsed in a worker thread (10,000 characters take tens of
    milliseconds); a shorter one right here, as the dialogue's prediction is.

    A short message's parse takes a few tenths of a millisecond (training/benchmarks/
    nlu_speed.py). Handing it to a thread cost more than that on a loaded 2-core machine: the
    hop, and the worker and the loop taking turns at the GIL (numpy releases it in its matrix
    products, not between its calls): in-process text turns went from 4.1-4.3 to 2.6-2.9 ms
    inline (docs/benchmarks.md, Server)."""
    if len(text) <= INLINE_PARSE_CHARS:
        return parse(text)
    return await asyncio.to_thread(parse, text)
