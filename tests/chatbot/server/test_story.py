"""``GET /conversations/{id}/story``: a conversation as Rasa YAML stories that read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from chatbot.project.story_reader import read_stories
from chatbot.server.story import applied, split_sessions, step_of, stories_yaml
from tests.chatbot.server.support import say

SESSION_START = [
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "action", "name": "action_listen"},
]


async def story_of(api: TestClient, conversation_id: str, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/conversations/{conversation_id}/story{query}")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-yaml"
    data: dict[str, Any] = yaml.safe_load(await response.text())
    return data


def user(intent: str, **entities: str) -> dict[str, Any]:
    return {
        "event": "user",
        "text": f"/{intent}",
        "parse_data": {
            "intent": {"name": intent, "confidence": 1.0},
            "entities": [{"entity": k, "value": v} for k, v in entities.items()],
        },
    }


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


async def test_a_conversation_as_a_story_that_reads_back(api: TestClient, tmp_path: Path) -> None:
    await say(api, "alice", "/greet")
    await say(api, "alice", '/request_restaurant{"cuisine": "italian"}')

    data = await story_of(api, "alice")

    assert data["version"] == "3.1"
    (story,) = data["stories"]
    assert story["story"] == "alice"
    steps = story["steps"]
    assert steps[:2] == [{"intent": "greet"}, {"action": "utter_greet"}]
    assert {"intent": "request_restaurant", "entities": [{"cuisine": "italian"}]} in steps
    assert {"slot_was_set": [{"cuisine": "italian"}]} in steps
    assert not any(s.get("action") in ("action_listen", "action_session_start") for s in steps)
    # It is a stories file this framework (and Rasa) reads.
    path = tmp_path / "stories.yml"
    path.write_text(await (await api.get("/conversations/alice/story")).text())
    stories, rules = read_stories(path)
    assert [s.name for s in stories] == ["alice"] and not rules
    assert len(stories[0].steps) == len(steps)


async def test_the_last_session_or_all_sessions(api: TestClient) -> None:
    await say(api, "bea", "/greet")
    appended = await api.post("/conversations/bea/tracker/events", json=SESSION_START)
    assert appended.status == 200
    await say(api, "bea", "/goodbye")

    last = (await story_of(api, "bea"))["stories"]
    assert [s["story"] for s in last] == ["bea"]
    assert last[0]["steps"][0] == {"intent": "goodbye"}

    every = (await story_of(api, "bea", "?all_sessions=true"))["stories"]
    assert [s["story"] for s in every] == ["bea, session 1", "bea, session 2"]
    assert every[0]["steps"][:2] == [{"intent": "greet"}, {"action": "utter_greet"}]
    assert every[1]["steps"][0] == {"intent": "goodbye"}
    assert (await story_of(api, "bea", "?all_sessions=false"))["stories"] == last


async def test_until_cuts_the_story(api: TestClient) -> None:
    await say(api, "cy", "/greet")
    assert (await story_of(api, "cy", "?until=0"))["stories"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/conversations/nobody/story", 404),
        ("/conversations/cy/story?all_sessions=maybe", 400),
        ("/conversations/cy/story?until=yesterday", 400),
        ("/conversations/" + "x" * 300 + "/story", 400),
    ],
)
async def test_bad_story_requests(api: TestClient, path: str, status: int) -> None:
    await say(api, "cy", "/greet")
    response = await api.get(path)
    assert response.status == status
    body = await response.json()
    assert body["status"] == "failure" and body["code"] == status


def test_what_was_taken_back_is_left_out() -> None:
    events = [
        action("action_listen"),
        user("greet"),
        action("utter_greet"),
        action("action_listen"),
        user("affirm"),
        action("utter_happy"),
        {"event": "undo"},  # takes utter_happy back
        {"event": "rewind"},  # takes the affirm and its listen back
        user("goodbye", name="Ann"),
        action("utter_goodbye"),
    ]
    assert [e.get("name") or e["parse_data"]["intent"]["name"] for e in applied(events)] == [
        "action_listen",
        "greet",
        "utter_greet",
        "goodbye",
        "utter_goodbye",
    ]
    restarted = [user("greet"), action("utter_greet"), {"event": "restart"}, user("bye")]
    assert applied(restarted) == [user("bye")]


def test_sessions_and_steps() -> None:
    events = [*SESSION_START, user("greet"), *SESSION_START, user("bye")]
    assert [len(s) for s in split_sessions(events)] == [4, 4]
    loop: list[dict[str, Any]] = [
        {"event": "active_loop", "name": "f"},
        {"event": "slot", "name": "n", "value": None},
    ]
    data = yaml.safe_load(stories_yaml("a: b", [*events, *loop]))
    assert [s["story"] for s in data["stories"]] == ["a: b, session 1", "a: b, session 2"]
    assert data["stories"][1]["steps"] == [
        {"intent": "bye"},
        {"active_loop": "f"},
        {"slot_was_set": [{"n": None}]},
    ]
    roles = user("book")
    roles["parse_data"]["entities"] = [{"entity": "city", "value": "Rome", "role": "to"}]
    steps = yaml.safe_load(stories_yaml("r", [roles]))["stories"][0]["steps"]
    assert steps == [
        {"intent": "book", "entities": [{"entity": "city", "value": "Rome", "role": "to"}]}
    ]
    no_intent = {"event": "user", "text": "hello there", "parse_data": {"intent": {}}}
    assert yaml.safe_load(stories_yaml("t", [no_intent]))["stories"][0]["steps"] == [
        {"user": "hello there"}
    ]


def test_a_typed_message_is_written_as_rasas_test_stories_write_it(tmp_path: Path) -> None:
    """Rasa's story route writes test stories: the user's text with its entities marked up,
    which reads back to the same text and entities (a `/intent` payload stays its intent)."""
    typed = {
        "event": "user",
        "text": "a table for [two] in Rome",
        "parse_data": {
            "intent": {"name": "request_restaurant", "confidence": 0.9},
            "entities": [
                {"entity": "city", "value": "Rome", "start": 21, "end": 25, "role": "to"},
            ],
        },
    }
    assert step_of(typed, test_story=True) == {
        "intent": "request_restaurant",
        "user": 'a table for [two] in [Rome]{"entity": "city", "role": "to"}',
    }
    assert step_of(typed) == {  # a training story's step (interactive learning writes them)
        "intent": "request_restaurant",
        "entities": [{"entity": "city", "value": "Rome", "role": "to"}],
    }
    assert step_of(user("inform", cuisine="thai"), test_story=True) == {
        "intent": "inform",
        "entities": [{"cuisine": "thai"}],
    }
    no_span = {**typed, "parse_data": {**typed["parse_data"], "entities": [{"entity": "x"}]}}
    assert "user" not in (step_of(no_span, test_story=True) or {})  # no place: as a payload
    written = stories_yaml("c", [action("action_listen"), typed, action("utter_ok")])
    (tmp_path / "test_c.yml").write_text(written)
    (story,), _ = read_stories(tmp_path / "test_c.yml", test=True)
    step = story.steps[0]
    assert step.text == typed["text"] and step.intent == "request_restaurant"
    assert [(e.entity, e.value, e.role, e.start, e.end) for e in step.entities] == [
        ("city", "Rome", "to", 21, 25)
    ]
