"""``/intent{"entity": "value"}`` messages: buttons and scripts name the intent directly.

The same syntax as Rasa's: ``/greet``, ``/inform{"cuisine": "thai"}``, ``/inform@0.8{...}``
(a confidence), entity values may be lists (one entity per element).
"""

from __future__ import annotations

import re
from typing import Any

from chatbot.json_input import loads

_PAYLOAD = re.compile(
    r"^/(?P<intent>[^{@\s]+)(?:@(?P<confidence>[0-9.]+))?(?P<entities>\{.*\})?\s*$", re.S
)


def is_intent_payload(text: str) -> bool:
    return _PAYLOAD.match(text.strip()) is not None if text else False


def parse_intent_payload(text: str) -> dict[str, Any] | None:
    """Rasa parse data for a payload message, or None if ``text`` is not one (or is malformed,
    in which case it is treated as ordinary text)."""
    match = _PAYLOAD.match(text.strip()) if text else None
    if match is None:
        return None
    intent = match.group("intent")
    try:
        confidence = float(match.group("confidence")) if match.group("confidence") else 1.0
    except ValueError:
        return None
    entities: list[dict[str, Any]] = []
    raw = match.group("entities")
    if raw:
        try:
            parsed = loads(raw)
        except ValueError:  # not JSON, NaN, nested too deeply: ordinary text
            return None
        if not isinstance(parsed, dict):
            return None
        for name, value in parsed.items():
            for item in value if isinstance(value, list) else [value]:
                entities.append({"entity": str(name), "start": 0, "end": len(text), "value": item})
    return {
        "text": text,
        "intent": {"name": intent, "confidence": min(max(confidence, 0.0), 1.0)},
        "intent_ranking": [{"name": intent, "confidence": min(max(confidence, 0.0), 1.0)}],
        "entities": entities,
    }
