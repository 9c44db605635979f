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
        {  # Rasa's full shapes: every checked key of its type
            "event": "user",
            "text": "a table for 2",
            "input_channel": "rest",
            "message_id": "m1",
            "metadata": {"a": [1, 2.5]},
            "parse_data": {
                "text": "a table for 2",
                "intent": {"name": "book", "confidence": 0.9},
                "intent_ranking": [{"name": "book", "confidence": 0.9}, {"name": None}],
                "entities": [
                    {"entity": "n", "start": 12, "end": 13, "value": 2, "confidence": 1,
                     "confidence_entity": 0.99, "role": None, "group": "g"},
                ],
            },
        },
        {"event": "action", "name": "x", "policy": "RulePolicy", "confidence": 1, "action_text": None},
        {"event": "loop_interrupted", "is_interrupted": True},
        {"event": "entities", "entities": [{"entity": "cuisine", "value": "thai"}]},
    ],
)  # fmt: skip
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
        # What the framework reads later must have its type, or every later turn of the
        # conversation it is stored in would fail (a hostile or buggy action server).
        ({"event": "bot", "data": "x"}, "'data' must be an object or null"),
        ({"event": "bot", "metadata": [1]}, "'metadata' must be an object or null"),
        (
            {"event": "user", "parse_data": {"intent_ranking": [{"name": "a", "confidence": "high"}]}},
            r"'parse_data.intent_ranking\[0\].confidence' must be a number or null",
        ),
        (
            {"event": "user", "parse_data": {"intent": {"name": "a", "confidence": True}}},
            "'parse_data.intent.confidence' must be a number",
        ),
        (
            {"event": "user", "parse_data": {"entities": [{"entity": "x", "start": 1.5}]}},
            r"'parse_data.entities\[0\].start' must be an integer or null",
        ),
        ({"event": "user", "input_channel": 3}, "'input_channel' must be a string or null"),
        ({"event": "entities", "entities": ["thai"]}, "'entities' must be a list of objects"),
        ({"event": "entities", "entities": [{"entity": 1}]}, r"'entities\[0\].entity' must be a"),
        ({"event": "loop_interrupted", "is_interrupted": "yes"}, "must be true or false"),
        ({"event": "action", "name": "a", "confidence": "x"}, "'confidence' must be a number"),
        ({"event": "slot", "name": "a", "timestamp": float("nan")}, "'timestamp' must be a number"),
        (
            {"event": "slot", "name": "a", "value": {"b": [1, float("inf")]}},
            r"key 'value.b\[1\]' is inf, which JSON cannot carry",
        ),
        # integers no float holds: float() of them overflowed later (an in-process action's)
        ({"event": "action", "name": "a", "confidence": 10**400}, "'confidence' must be a number"),
        ({"event": "bot", "timestamp": -(10**309)}, "'timestamp' must be a number"),
        (
            {"event": "slot", "name": "a", "value": [10**5000]},
            r"key 'value\[0\]' is an integer of about 5001 digits",
        ),
    ],
)  # fmt: skip
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
