from __future__ import annotations

import pytest

from chatbot.conversation import events as ev
from chatbot.conversation.events import InvalidEvent, validate_event, validate_events


@pytest.mark.parametrize(
    "event",
    [
        {
            "event": "user",
            "text": "hi",
            "parse_data": {"intent": {"name": "greet", "confidence": 1}},
        },
        {"event": "bot", "text": "hello", "data": {}},
        {"event": "action", "name": "action_listen"},
        {"event": "slot", "name": "cuisine", "value": None},
        {"event": "active_loop", "name": None},
        {"event": "restart"},
        {"event": "rewind"},
        {"event": "undo"},
        {"event": "session_started"},
        {"event": "followup", "name": "utter_greet"},
        {"event": "reminder", "intent": "x"},
    ],
)
def test_valid_events_pass_and_get_a_timestamp(event: dict) -> None:
    checked = validate_event(event)
    assert checked["event"] == event["event"]
    assert isinstance(checked["timestamp"], float)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("nope", "expected an object"),
        ({}, "missing string key 'event'"),
        ({"event": "teleport"}, "unknown event type 'teleport'"),
        ({"event": "action"}, "needs key 'name'"),
        ({"event": "action", "name": 3}, "'name' of event 'action' must be a string"),
        ({"event": "slot", "name": ["x"], "value": 1}, "must be a string"),
        ({"event": "active_loop", "name": 5}, "string or null"),
        ({"event": "user", "text": 5}, "'text' of event 'user'"),
        ({"event": "user", "parse_data": []}, "'parse_data' must be an object"),
        ({"event": "user", "parse_data": {"entities": [1]}}, "list of objects"),
        ({"event": "bot", "timestamp": "now"}, "'timestamp' must be a number"),
        ({"event": "entities", "entities": {}}, "'entities' must be a list"),
    ],
)
def test_invalid_events_name_what_is_wrong(event: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        validate_event(event, "events[0]")


def test_validate_events_names_the_index() -> None:
    with pytest.raises(InvalidEvent, match=r"events\[1\]"):
        validate_events([{"event": "restart"}, {"event": "?"}])
    with pytest.raises(InvalidEvent, match="expected a list"):
        validate_events({"event": "restart"})


def test_user_event_carries_parse_data_in_rasa_shape() -> None:
    event = ev.user(
        "hi", {"intent": {"name": "greet", "confidence": 0.9}, "entities": []}, input_channel="rest"
    )
    assert event["parse_data"]["intent"] == {"name": "greet", "confidence": 0.9}
    assert event["parse_data"]["text"] == "hi"
    assert event["input_channel"] == "rest"
    assert ev.intent_name(event) == "greet"
