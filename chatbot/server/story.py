"""A stored conversation as Rasa YAML stories (``GET /conversations/{id}/story``).

Each session is one story named by the conversation id (``"<id>, session 2"`` and so on when
several sessions are written). Its steps are the applied events of the session, as Rasa's
``tracker.as_story()`` writes them: what a ``restart``, ``undo`` or ``rewind`` took back is left
out; user turns are their intent and, as in Rasa's test stories, their text with the entities
marked up (a ``/intent`` payload: its intent and entities); actions,
slots and active loops are written as they happened; the implicit ``action_listen``, the session
start and the bot's messages are not. The text reads back as a training or test story.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.project.domain import ACTION_LISTEN, ACTION_SESSION_START
from chatbot.project.nlu_writer import annotated_message, entity_spans

_SKIPPED_ACTIONS = frozenset({ACTION_LISTEN, ACTION_SESSION_START})


def split_sessions(events: Sequence[Event]) -> list[list[Event]]:
    """The events cut before each ``action_session_start``; empty sessions left out."""
    sessions: list[list[Event]] = [[]]
    for event in events:
        if ev.is_action(event, ACTION_SESSION_START) and sessions[-1]:
            sessions.append([])
        sessions[-1].append(event)
    return [session for session in sessions if session]


def applied(events: Sequence[Event]) -> list[Event]:
    """The events that still count (Rasa's applied events, without folding forms' turns)."""
    kept: list[Event] = []
    for event in events:
        kind = event.get("event")
        if kind == "restart":
            kept = []
        elif kind == "undo":
            _take_back(kept, lambda e: e.get("event") == "action")
        elif kind == "rewind":  # the user's message and the listen before it
            _take_back(kept, lambda e: e.get("event") == "user")
            _take_back(kept, lambda e: e.get("event") == "action")
        else:
            kept.append(event)
    return kept


def _take_back(kept: list[Event], is_target: Any) -> None:
    """Drop events from the end up to and including the last one ``is_target`` accepts."""
    while kept:
        if is_target(kept.pop()):
            return


def step_of(event: Event, *, test_story: bool = False) -> dict[str, Any] | None:
    """One story step, or None for an event a story does not show. ``test_story`` (Rasa's for
    the story route): a typed message is its intent and its text with the entities marked up;
    else (a training story: interactive learning's) its intent and entities."""
    kind = event.get("event")
    if kind == "user":
        intent = ev.intent_name(event)
        parse = event.get("parse_data") or {}
        text = event.get("text")
        found = [e for e in parse.get("entities") or [] if isinstance(e, dict)]
        step: dict[str, Any] = {}
        if intent is not None:
            step["intent"] = intent
        elif text is None:
            return None
        if test_story and isinstance(text, str) and _written_out(text, found):
            # As Rasa's test stories: the text with its entities marked up.
            step["user"] = annotated_message(text, found)
            return step
        entities = [_entity(e) for e in found]
        if entities:
            step["entities"] = entities
        return step
    if kind == "action":
        name = event.get("name")
        if not name or name in _SKIPPED_ACTIONS:
            return None
        return {"action": name}
    if kind == "slot":
        return {"slot_was_set": [{event["name"]: event.get("value")}]}
    if kind in ("active_loop", "form"):
        return {"active_loop": event.get("name")}
    return None


def _written_out(text: str, entities: Sequence[dict[str, Any]]) -> bool:
    """Whether a user message is written as its text: typed words (a ``/intent`` payload is
    its intent and entities) whose every entity has its place in the text."""
    if not text.strip() or text != text.strip() or text.startswith("/"):
        return False
    return len(entity_spans(text, entities)) == len(entities)


def _entity(entity: dict[str, Any]) -> dict[str, Any]:
    name, value = str(entity.get("entity")), entity.get("value")
    extra = {k: entity[k] for k in ("role", "group") if entity.get(k) is not None}
    if not extra:
        return {name: value}
    return {"entity": name, "value": value, **extra}


def stories_yaml(conversation_id: str, events: Sequence[Event]) -> str:
    """The sessions of ``events`` as a Rasa 3.x stories file."""
    sessions = split_sessions(events)
    lines = ['version: "3.1"', "stories:" if sessions else "stories: []"]
    for number, session in enumerate(sessions, start=1):
        name = conversation_id if len(sessions) == 1 else f"{conversation_id}, session {number}"
        steps = [s for s in (step_of(e, test_story=True) for e in applied(session)) if s]
        lines.append(f"- story: {json.dumps(name, ensure_ascii=False)}")
        if not steps:
            lines.append("  steps: []")
            continue
        lines.append("  steps:")
        text = yaml.safe_dump(steps, allow_unicode=True, sort_keys=False, width=100)
        lines.extend("  " + line for line in text.splitlines())
    return "\n".join(lines) + "\n"
