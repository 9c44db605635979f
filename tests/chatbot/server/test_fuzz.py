"""Random JSON thrown at the REST channel and the HTTP API finds no 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.events import REQUIRED_KEYS
from chatbot.json_input import loads
from chatbot.store import SQLStore
from tests.chatbot.server.support import StartServer

SENDERS = ["alice", "bob", "x" * 255]
INTENTS = ["greet", "request_restaurant", "inform", "affirm", "deny", "stop", "nope"]
SLOTS = ["cuisine", "num_people", "outdoor_seating", "preferences", "requested_slot", "other"]
ACTIONS = ["action_listen", "restaurant_form", "utter_greet", "action_restart", "validate_x"]

# Text, now and then with what hypothesis's text never has: a lone surrogate (JSON's "\ud800"
# escapes decode to one; it is not Unicode text), or a NUL, or a character beyond the BMP.
ODD = ["\ud800", "\udfff", "\x00", "\U0001f600"]


def texts(max_size: int) -> st.SearchStrategy[str]:
    half = max_size // 2
    return st.text(max_size=max_size) | st.builds(
        lambda a, odd, b: a + odd + b,
        st.text(max_size=half),
        st.sampled_from(ODD),
        st.text(max_size=half),
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts(20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(texts(10), children, max_size=4)
    ),
    max_leaves=12,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in four, any JSON otherwise."""
    return st.one_of(valid, valid, valid, json_values)


payload_texts = st.builds(
    lambda intent, entities: f"/{intent}{json.dumps(entities)}" if entities else f"/{intent}",
    st.sampled_from(INTENTS),
    st.dictionaries(st.sampled_from(["cuisine", "number", "x"]), json_values, max_size=2),
)

intent_objects = st.fixed_dictionaries(
    {"name": mostly(st.sampled_from(INTENTS)), "confidence": json_values}
)
# A parse result: mostly well formed, with any JSON in any of its places now and then.
parse_datas = st.fixed_dictionaries(
    {},
    optional={
        "intent": mostly(intent_objects),
        "entities": mostly(
            st.lists(
                st.fixed_dictionaries(
                    {"entity": st.sampled_from(["cuisine", "number"]) | json_values},
                    optional={"value": json_values, "role": json_values},
                )
                | json_values,
                max_size=3,
            )
        ),
        "intent_ranking": mostly(st.lists(mostly(intent_objects), max_size=3)),
    },
)

events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(sorted(REQUIRED_KEYS)),
        "name": mostly(st.sampled_from(SLOTS + ACTIONS)),
    },
    optional={
        "value": json_values,
        "text": mostly(texts(10)),
        "timestamp": st.floats(min_value=0, max_value=2e9),
        "parse_data": parse_datas,
        "entities": mostly(st.lists(json_values, max_size=2)),
        "is_interrupted": json_values,
        "data": json_values,
        "metadata": json_values,
    },
)

rest_bodies = st.fixed_dictionaries(
    {},
    optional={
        "sender": mostly(st.sampled_from(SENDERS)),
        "message": mostly(payload_texts | texts(30)),
        "metadata": json_values,
        "input_channel": json_values,
    },
)

api_requests = st.one_of(
    st.tuples(
        st.sampled_from(["POST", "PUT"]),
        st.just("tracker/events"),
        mostly(events | st.lists(events, max_size=4)),
    ),
    st.tuples(
        st.just("POST"),
        st.just("messages"),
        st.fixed_dictionaries(
            {"sender": mostly(st.just("user")), "text": mostly(payload_texts)},
            optional={"parse_data": mostly(parse_datas)},
        ),
    ),
    st.tuples(
        st.just("POST"),
        st.just("trigger_intent"),
        st.fixed_dictionaries(
            {"name": mostly(st.sampled_from(INTENTS))},
            optional={"entities": json_values},
        ),
    ),
    st.tuples(
        st.just("POST"),
        st.just("execute"),
        st.fixed_dictionaries(
            {"name": mostly(st.sampled_from(ACTIONS))},
            optional={"policy": json_values, "confidence": json_values},
        ),
    ),
    st.tuples(st.just("POST"), st.just("predict"), json_values),
    st.tuples(st.just("GET"), st.just("tracker"), json_values),
    st.tuples(st.just("GET"), st.just("story"), json_values),
)
output_channels = st.sampled_from([None, None, "latest", "rest", "callback", "x"])


@pytest.fixture(params=["memory", "sqlite"])
async def api(
    request: pytest.FixtureRequest,
    start_server: StartServer,
    restaurant_model: TrainedModel,
    tmp_path: Path,
) -> TestClient:
    """The restaurant bot with the HTTP API on, without authentication, its conversations in
    memory or in SQLite (which stores text as UTF-8: what is not Unicode text must not reach
    it unescaped)."""
    store = SQLStore(f"sqlite:///{tmp_path / 'fuzz.db'}") if request.param == "sqlite" else None
    return await start_server(
        Agent(restaurant_model, store=store), enable_api=True, rate_limit=None
    )


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def assert_no_server_error(response: Any) -> None:
    text = await response.text()
    assert response.status < 500, text
    assert "Traceback" not in text
    if response.status >= 400 or response.content_type == "application/json":
        loads(text)  # every error is JSON, and every answer but a story (YAML); strict JSON


@FUZZ
@given(body=rest_bodies | json_values)
async def test_rest_channel_never_fails(api: TestClient, body: Any) -> None:
    response = await api.post("/webhooks/rest/webhook", json=body)
    await assert_no_server_error(response)


@FUZZ
@given(
    sender=st.sampled_from(SENDERS),
    request=api_requests,
    include_events=st.sampled_from(["ALL", "APPLIED", "AFTER_RESTART", "NONE"] * 3 + ["bad"]),
    output_channel=output_channels,
    side_effects=st.sampled_from(["true", "false", "maybe"]),
    then=payload_texts,
)
async def test_api_never_fails(
    api: TestClient,
    sender: str,
    request: tuple[str, str, Any],
    include_events: str,
    output_channel: str | None,
    side_effects: str,
    then: str,
) -> None:
    method, route, body = request
    params = {"include_events": include_events, "execute_side_effects": side_effects}
    if output_channel is not None:
        params["output_channel"] = output_channel
    response = await api.request(
        method, f"/conversations/{sender}/{route}", params=params, json=body
    )
    await assert_no_server_error(response)
    # Whatever the API stored, the conversation can go on.
    answer = await api.post("/webhooks/rest/webhook", json={"sender": sender, "message": then})
    await assert_no_server_error(answer)
    tracker = await api.get(f"/conversations/{sender}/tracker")
    await assert_no_server_error(tracker)


@FUZZ
@given(
    sender=st.sampled_from(SENDERS),
    body=st.fixed_dictionaries(
        {"sender": st.just("user"), "text": mostly(payload_texts)},
        optional={"parse_data": mostly(parse_datas), "metadata": json_values},
    ),
)
async def test_posted_messages_never_fail(api: TestClient, sender: str, body: Any) -> None:
    """``POST .../messages`` takes a parse result from the client: a malformed one is a 400."""
    response = await api.post(f"/conversations/{sender}/messages", json=body)
    await assert_no_server_error(response)
    tracker = await api.get(f"/conversations/{sender}/tracker")
    await assert_no_server_error(tracker)


@FUZZ
@given(
    body=mostly(st.lists(events, min_size=1, max_size=6)) | json_values,
    include_events=st.sampled_from(["ALL", "APPLIED", "AFTER_RESTART", "NONE", "bad"]),
)
async def test_predicting_after_posted_events_never_fails(
    api: TestClient, body: Any, include_events: str
) -> None:
    """``POST /model/predict`` builds a conversation of whatever events it is given."""
    response = await api.post(
        "/model/predict", params={"include_events": include_events}, json=body
    )
    await assert_no_server_error(response)
    event(f"status {response.status}")
    if response.status == 200:
        answer = await response.json()
        assert answer["scores"] and answer["tracker"]["sender_id"] == "default"
