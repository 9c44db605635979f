"""What a turn did, at DEBUG (``chatbot -v shell``, ``chatbot -v run``), as Rasa's ``--debug``
shows it: the user message as the NLU read it, each next action with the policy that chose it
and its confidence, what each action did, and the slots after the turn.

The user's text appears here only: at DEBUG, which a bot's developer turns on; the INFO lines of
a server never hold it. Every function is called only when DEBUG is on for ``chatbot.processor``
(``enabled()``), so a served turn pays one level check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger("chatbot.processor")

# A value or text in a line is cut to this many characters.
MAX_SHOWN = 80
# At most this many events are described per action; the rest are counted.
MAX_EVENTS = 8


def enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


def user_message(conversation_id: str, text: str | None, parse_data: Mapping[str, Any]) -> None:
    intent = parse_data.get("intent") or {}
    entities = [
        f"{e.get('entity')}={_short(e.get('value'))}"
        for e in parse_data.get("entities") or ()
        if isinstance(e, Mapping)
    ]
    # The runner-up intent says how close the NLU came to reading the message otherwise.
    ranking = [r for r in parse_data.get("intent_ranking") or () if isinstance(r, Mapping)]
    runner_up = next((r for r in ranking if r.get("name") != intent.get("name")), None)
    second = (
        f"; next {runner_up.get('name')} ({float(runner_up.get('confidence') or 0.0):.2f})"
        if runner_up is not None
        else ""
    )
    logger.debug(
        "conversation %s: user said %s: intent %s (%.2f%s), entities [%s]",
        conversation_id,
        _short(text),
        intent.get("name"),
        float(intent.get("confidence") or 0.0),
        second,
        ", ".join(entities),
    )


def prediction(conversation_id: str, action: str, policy: str, confidence: float) -> None:
    logger.debug(
        "conversation %s: next action %s (%s, confidence %.2f)",
        conversation_id,
        action,
        policy,
        confidence,
    )


def action_events(conversation_id: str, action: str, events: Iterable[Mapping[str, Any]]) -> None:
    described = [describe(e) for e in events]
    shown = described[:MAX_EVENTS]
    if len(described) > MAX_EVENTS:
        shown.append(f"... {len(described) - MAX_EVENTS} more")
    logger.debug("conversation %s: %s ended with [%s]", conversation_id, action, "; ".join(shown))


def slots(conversation_id: str, values: Mapping[str, Any]) -> None:
    filled = [f"{k}={_short(v)}" for k, v in sorted(values.items()) if v is not None]
    logger.debug("conversation %s: slots [%s]", conversation_id, ", ".join(filled))


def describe(event: Mapping[str, Any]) -> str:
    """One event in a few words: ``bot 'Hi!'``, ``slot cuisine='thai'``, ``active_loop
    restaurant_form``."""
    kind = str(event.get("event"))
    if kind == "bot":
        text = event.get("text")
        if text is None and event.get("data"):
            return "bot (no text: buttons, image or custom)"
        return f"bot {_short(text)}"
    if kind == "slot":
        return f"slot {event.get('name')}={_short(event.get('value'))}"
    if kind == "active_loop":
        return f"active_loop {event.get('name')}"
    if kind == "action":
        return f"action {event.get('name')}"
    if kind == "followup":
        return f"followup {event.get('name')}"
    if kind == "user":
        return f"user {_short(event.get('text'))}"
    return kind


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
