"""``POST /model/parse?emulation_mode=``: a parse result in the format of another NLU service, as
Rasa's emulators give it (``wit``, ``luis``, ``dialogflow``; the name in any case)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Result = Mapping[str, Any]


def _wit(data: Result) -> Any:
    entities: dict[str, list[dict[str, Any]]] = {}
    for entity in data.get("entities") or []:
        entities.setdefault(str(entity.get("entity")), []).append(
            {
                "confidence": None,
                "type": "value",
                "value": entity.get("value"),
                "start": entity.get("start"),
                "end": entity.get("end"),
            }
        )
    intent = data.get("intent") or {}
    return [
        {
            "_text": data.get("text"),
            "confidence": intent.get("confidence"),
            "intent": intent.get("name"),
            "entities": entities,
        }
    ]


def _luis(data: Result) -> Any:
    intent = data.get("intent") or {}
    ranking = data.get("intent_ranking") or [intent]
    return {
        "query": data.get("text"),
        "topScoringIntent": {"intent": intent.get("name"), "score": intent.get("confidence")},
        "intents": [{"intent": r.get("name"), "score": r.get("confidence")} for r in ranking],
        "entities": [
            {
                "entity": e.get("value"),
                "type": e.get("entity"),
                "startIndex": e.get("start"),
                "endIndex": e["end"] - 1 if isinstance(e.get("end"), int) else None,
                "score": e.get("confidence_entity"),
            }
            for e in data.get("entities") or []
        ],
    }


def _dialogflow(data: Result) -> Any:
    parameters: dict[str, list[Any]] = {}
    for entity in data.get("entities") or []:
        parameters.setdefault(str(entity.get("entity")), []).append(entity.get("value"))
    intent = data.get("intent") or {}
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now().isoformat(),
        "result": {
            "source": "agent",
            "resolvedQuery": data.get("text"),
            "action": intent.get("name"),
            "actionIncomplete": False,
            "parameters": parameters,
            "contexts": [],
            "metadata": {
                "intentId": str(uuid.uuid4()),
                "webhookUsed": "false",
                "intentName": intent.get("name"),
            },
            "fulfillment": {},
            "score": intent.get("confidence"),
        },
        "status": {"code": 200, "errorType": "success"},
        "sessionId": str(uuid.uuid4()),
    }


EMULATORS: dict[str, Callable[[Result], Any]] = {
    "wit": _wit,
    "luis": _luis,
    "dialogflow": _dialogflow,
}


def emulator(name: str) -> Callable[[Result], Any] | None:
    """The formatter of an ``emulation_mode`` (any case); None for a name not known."""
    return EMULATORS.get(name.lower())
