"""Rasa's event JSON, verbatim: the vocabulary of every conversation.

Events stay plain dicts end to end (the store keeps them as written, the action server and the HTTP
API speak them), so this module holds their types, constructors and one validator for events that
arrive from outside (action servers, ``PUT/POST /conversations/{id}/tracker/events``).
"""

from __future__ import annotations

import math
import time
from typing import Any, TypedDict

from chatbot.errors import ChatbotError
from chatbot.ranges import finite_number

Event = dict[str, Any]


class IntentDict(TypedDict):
    name: str | None
    confidence: float


class EntityDict(TypedDict, total=False):
    entity: str
    start: int
    end: int
    value: Any
    role: str
    group: str
    confidence_entity: float
    extractor: str


class ParseData(TypedDict, total=False):
    text: str
    intent: IntentDict
    entities: list[EntityDict]
    intent_ranking: list[IntentDict]
    response_selector: dict[str, Any]
    message_id: str | None
    metadata: dict[str, Any]


class InvalidEvent(ChatbotError):
    """An event from outside that is not valid Rasa event JSON; ``str()`` says what is wrong."""


# Every event type Rasa defines, with the keys each must carry. Types we store but that change no
# state ("export", "reminder", ...) are still accepted, so Rasa conversations import unchanged.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "user": (),
    "bot": (),
    "action": ("name",),
    "slot": ("name",),
    "active_loop": (),
    "form": (),  # Rasa 2.x name of active_loop
    "loop_interrupted": (),
    "form_validation": (),  # Rasa 2.x, the inverse of loop_interrupted
    "action_execution_rejected": ("name",),
    "restart": (),
    "rewind": (),
    "undo": (),
    "reset_slots": (),
    "session_started": (),
    "followup": ("name",),
    "reminder": (),
    "cancel_reminder": (),
    "pause": (),
    "resume": (),
    "export": (),
    "agent": (),
    "entities": ("entities",),
    "user_featurization": (),
    "stack": (),
}


def now() -> float:
    return time.time()


def user(
    text: str | None,
    parse_data: ParseData | None = None,
    *,
    input_channel: str | None = None,
    message_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: float | None = None,
) -> Event:
    data: ParseData = dict(parse_data or {})  # type: ignore[assignment]
    intent = data.get("intent") or {"name": None, "confidence": 0.0}
    return {
        "event": "user",
        "timestamp": timestamp if timestamp is not None else now(),
        "text": text,
        "parse_data": {
            "intent": intent,
            "entities": list(data.get("entities") or []),
            "text": text,
            "message_id": message_id,
            "metadata": metadata or {},
            **{k: v for k, v in data.items() if k not in ("intent", "entities", "text")},
        },
        "input_channel": input_channel,
        "message_id": message_id,
        "metadata": metadata or {},
    }


def bot(
    text: str | None, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
) -> Event:
    return {
        "event": "bot",
        "timestamp": now(),
        "text": text,
        "data": data or {},
        "metadata": metadata or {},
    }


def action(
    name: str,
    policy: str | None = None,
    confidence: float | None = None,
    *,
    action_text: str | None = None,
    hide_rule_turn: bool = False,
) -> Event:
    return {
        "event": "action",
        "timestamp": now(),
        "name": name,
        "policy": policy,
        "confidence": confidence,
        "action_text": action_text,
        "hide_rule_turn": hide_rule_turn,
    }


def slot(name: str, value: Any) -> Event:
    return {"event": "slot", "timestamp": now(), "name": name, "value": value}


def active_loop(name: str | None) -> Event:
    return {"event": "active_loop", "timestamp": now(), "name": name}


def loop_interrupted(is_interrupted: bool) -> Event:
    return {"event": "loop_interrupted", "timestamp": now(), "is_interrupted": is_interrupted}


def action_rejected(name: str, policy: str | None = None, confidence: float | None = None) -> Event:
    return {
        "event": "action_execution_rejected",
        "timestamp": now(),
        "name": name,
        "policy": policy,
        "confidence": confidence,
    }


def is_slot_outside(event: Event, slots: Any) -> bool:
    """Whether ``event`` sets a slot that ``slots`` (a conversation's) does not have."""
    return event.get("event") == "slot" and event.get("name") not in slots


def simple(kind: str) -> Event:
    """restart, rewind, undo, reset_slots, session_started, pause, resume, export."""
    assert kind in REQUIRED_KEYS and not REQUIRED_KEYS[kind], kind
    return {"event": kind, "timestamp": now()}


def followup(name: str) -> Event:
    return {"event": "followup", "timestamp": now(), "name": name}


def validate_event(obj: object, where: str = "event") -> Event:
    """Check one event dict from outside; returns it (with a timestamp) or raises InvalidEvent."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"{where}: expected an object, got {type(obj).__name__}")
    kind = obj.get("event")
    if not isinstance(kind, str):
        raise InvalidEvent(f"{where}: missing string key 'event'")
    if kind not in REQUIRED_KEYS:
        known = ", ".join(sorted(REQUIRED_KEYS))
        raise InvalidEvent(f"{where}: unknown event type {kind!r}; known types: {known}")
    for key in REQUIRED_KEYS[kind]:
        if key not in obj:
            raise InvalidEvent(f"{where}: event {kind!r} needs key {key!r}")
    if kind in ("action", "slot", "followup", "action_execution_rejected") and not isinstance(
        obj.get("name"), str
    ):
        raise InvalidEvent(f"{where}: key 'name' of event {kind!r} must be a string")
    if kind in ("active_loop", "form") and not isinstance(obj.get("name"), (str, type(None))):
        raise InvalidEvent(f"{where}: key 'name' of event {kind!r} must be a string or null")
    if kind in ("user", "bot") and obj.get("text") is not None and not isinstance(obj["text"], str):
        raise InvalidEvent(f"{where}: key 'text' of event {kind!r} must be a string or null")
    if kind == "user" and obj.get("parse_data") is not None:
        if not isinstance(obj["parse_data"], dict):
            raise InvalidEvent(f"{where}: key 'parse_data' must be an object")
        _check_parse_data(obj["parse_data"], where)
    if kind == "entities":
        _check_items(obj, "entities", _ENTITY, where, "")
    for key, field_kind in (*_FIELDS.get(kind, ()), ("timestamp", _NUMBER), ("metadata", _OBJECT)):
        _check(obj, key, field_kind, where, "")
    bad = _not_json_number(obj)
    if bad is not None:
        path, value = bad
        raise InvalidEvent(f"{where}: key '{path}' is {value}, which JSON cannot carry")
    event = dict(obj)
    if event.get("timestamp") is None:
        event["timestamp"] = now()
    return event


# Optional keys that the framework reads, with the JSON types each may have besides null (as
# Rasa's event schema types them): a bot event whose ``data`` is text, or a ranking whose
# confidence is a word, would break every later turn of the conversation it is stored in.
_Kind = tuple[tuple[type, ...], str]  # the types a value may have, and their name in an error
_NUMBER: _Kind = ((int, float), "a number")
_TEXT: _Kind = ((str,), "a string")
_OBJECT: _Kind = ((dict,), "an object")
_INTEGER: _Kind = ((int,), "an integer")
_FLAG: _Kind = ((bool,), "true or false")
_FIELDS: dict[str, tuple[tuple[str, _Kind], ...]] = {
    "user": (("input_channel", _TEXT), ("message_id", _TEXT)),
    "bot": (("data", _OBJECT),),
    "action": (("policy", _TEXT), ("confidence", _NUMBER), ("action_text", _TEXT)),
    "action_execution_rejected": (("policy", _TEXT), ("confidence", _NUMBER)),
    "loop_interrupted": (("is_interrupted", _FLAG),),
}
_INTENT = (("name", _TEXT), ("confidence", _NUMBER))
_ENTITY = (
    ("entity", _TEXT),
    ("start", _INTEGER),
    ("end", _INTEGER),
    ("confidence", _NUMBER),
    ("confidence_entity", _NUMBER),
    ("role", _TEXT),
    ("group", _TEXT),
)


def _check(obj: dict[str, Any], key: str, kind: _Kind, where: str, path: str) -> None:
    """An InvalidEvent unless ``obj[key]`` is null or of ``kind`` (numbers: not booleans, not
    infinite or NaN, which JSON cannot carry)."""
    value = obj.get(key)
    if value is None:
        return
    types, what = kind
    fits = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if fits and kind is _NUMBER:  # not an integer no float holds either: float() overflows
        fits = finite_number(value) is not None
    if not fits:
        raise InvalidEvent(f"{where}: key '{path}{key}' must be {what} or null")


def _check_parse_data(parse_data: dict[str, Any], where: str) -> None:
    _check(parse_data, "text", _TEXT, where, "parse_data.")
    intent = parse_data.get("intent")
    if intent is not None:
        if not isinstance(intent, dict):
            raise InvalidEvent(f"{where}: key 'parse_data.intent' must be an object")
        for key, field_kind in _INTENT:
            _check(intent, key, field_kind, where, "parse_data.intent.")
    for name, fields in (("intent_ranking", _INTENT), ("entities", _ENTITY)):
        if parse_data.get(name) is not None:
            _check_items(parse_data, name, fields, where, "parse_data.")


def _check_items(
    obj: dict[str, Any],
    key: str,
    fields: tuple[tuple[str, _Kind], ...],
    where: str,
    path: str,
) -> None:
    """``obj[key]`` must be a list of objects whose ``fields`` are of their kinds."""
    items = obj.get(key)
    if not (isinstance(items, list) and all(isinstance(item, dict) for item in items)):
        raise InvalidEvent(f"{where}: key '{path}{key}' must be a list of objects")
    for index, item in enumerate(items):
        for name, kind in fields:
            _check(item, name, kind, where, f"{path}{key}[{index}].")


def _not_json_number(value: Any) -> tuple[str, str] | None:
    """(where, the number as said) of a NaN or infinity in ``value`` (an action's slot value,
    say: Python makes them, JSON has none), or of an integer beyond a float's range (JSON
    parsers read numbers as floats; ``json_input`` refuses it), or None."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path, str(item)
        if isinstance(item, int) and not isinstance(item, bool) and finite_number(item) is None:
            # bit_length, not str(): str() refuses an integer of more than 4,300 digits
            return path, f"an integer of about {int(item.bit_length() * 0.30103) + 1} digits"
        if isinstance(item, dict):
            pending.extend((v, f"{path}.{k}" if path else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


def validate_events(objs: object, where: str = "events") -> list[Event]:
    if not isinstance(objs, list):
        raise InvalidEvent(f"{where}: expected a list of events, got {type(objs).__name__}")
    return [validate_event(o, f"{where}[{i}]") for i, o in enumerate(objs)]


def identity(event: Event) -> tuple[Any, ...]:
    """What tells one stored event from another (their times are to the microsecond): a cached
    copy of a conversation is checked against the store's log by its last event's identity."""
    return (event.get("event"), event.get("timestamp"), event.get("name"), event.get("text"))


def is_action(event: Event, name: str | None = None) -> bool:
    return event.get("event") == "action" and (name is None or event.get("name") == name)


def intent_name(event: Event) -> str | None:
    intent = (event.get("parse_data") or {}).get("intent") or {}
    name = intent.get("name")
    return name if isinstance(name, str) else None
