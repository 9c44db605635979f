"""The HTTP API's routes and payloads, as Rasa's (``--enable-api``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient

from chatbot import model_file
from chatbot.agent import Agent, TrainedModel
from tests.chatbot.server.support import StartServer, say
from tests.helpers import free_port


async def test_the_api_is_off_by_default(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model))
    await say(client, "alice", "/greet")
    for method, path in [("GET", "/conversations/alice/tracker"), ("GET", "/status")]:
        response = await client.request(method, path)
        assert response.status == 404
        assert (await response.json())["reason"] == "NotFound"


async def test_tracker_after_a_conversation(api: TestClient) -> None:
    await say(api, "alice", "/greet")
    await say(api, "alice", '/request_restaurant{"cuisine": "italian"}')

    response = await api.get("/conversations/alice/tracker")
    assert response.status == 200
    tracker = await response.json()
    assert tracker["sender_id"] == "alice"
    assert tracker["slots"]["cuisine"] == "italian"
    assert tracker["latest_message"]["intent"]["name"] == "request_restaurant"
    assert tracker["latest_action_name"] == "action_listen"
    assert tracker["latest_input_channel"] == "rest"
    names = [e.get("name") for e in tracker["events"] if e["event"] == "action"]
    assert names[:3] == ["action_session_start", "action_listen", "utter_greet"]


@pytest.mark.parametrize(
    ("include_events", "expected"),
    [
        ("ALL", "all"),
        ("after_restart", "after"),
        ("APPLIED", "applied"),
        ("NONE", None),
    ],
)
async def test_include_events(api: TestClient, include_events: str, expected: str | None) -> None:
    await say(api, "bob", "/greet")
    await api.post("/conversations/bob/tracker/events", json={"event": "restart"})
    await say(api, "bob", "/goodbye")
    response = await api.get(f"/conversations/bob/tracker?include_events={include_events}")
    assert response.status == 200
    events = (await response.json())["events"]
    if expected is None:
        assert events is None
        return
    kinds = [e["event"] for e in events]
    if expected == "all":
        assert kinds.count("user") == 2 and "restart" in kinds
    else:
        assert "restart" not in kinds and kinds.count("user") == 1
    if expected == "applied":
        assert kinds[0] == "action"  # a session start after the restart


async def test_bad_include_events_and_until(api: TestClient) -> None:
    await say(api, "carol", "/greet")
    bad = await api.get("/conversations/carol/tracker?include_events=SOME")
    assert bad.status == 400
    assert "include_events" in (await bad.json())["message"]
    for until in ("yesterday", "nan", "inf"):
        assert (await api.get(f"/conversations/carol/tracker?until={until}")).status == 400
    early = await (await api.get("/conversations/carol/tracker?until=1&include_events=ALL")).json()
    assert early["events"] == []


async def test_unknown_conversation_is_a_404(api: TestClient) -> None:
    for method, path in [
        ("GET", "/conversations/nobody/story"),
        ("POST", "/conversations/nobody/predict"),
    ]:
        response = await api.request(method, path)
        assert response.status == 404
        body = await response.json()
        assert body["status"] == "failure" and "nobody" in body["message"]


async def test_the_tracker_of_a_new_conversation_is_a_new_session_not_stored(
    api: TestClient,
) -> None:
    """As Rasa: a front end may read the tracker before the first message."""
    response = await api.get("/conversations/newcomer/tracker")
    assert response.status == 200
    tracker = await response.json()
    assert tracker["sender_id"] == "newcomer"
    assert [e["event"] for e in tracker["events"]] == ["action", "session_started", "action"]
    assert tracker["latest_action_name"] == "action_listen"
    assert (await api.get("/conversations/newcomer/story")).status == 404  # nothing stored


async def test_a_conversation_id_may_hold_slashes(api: TestClient) -> None:
    """As Rasa's ``<conversation_id:path>``: a channel's id such as ``team/user``."""
    response = await api.post(
        "/conversations/team/ann/tracker/events",
        json={"event": "slot", "name": "cuisine", "value": "thai"},
    )
    assert response.status == 200 and (await response.json())["sender_id"] == "team/ann"
    tracker = await (await api.get("/conversations/team/ann/tracker")).json()
    assert tracker["sender_id"] == "team/ann" and tracker["slots"]["cuisine"] == "thai"
    assert (await api.get("/conversations/team%2Fann/story")).status == 200  # encoded too


async def test_too_long_conversation_id_is_a_400(api: TestClient) -> None:
    response = await api.get(f"/conversations/{'x' * 300}/tracker")
    assert response.status == 400


async def test_append_events_one_or_many(api: TestClient) -> None:
    one = await api.post(
        "/conversations/dave/tracker/events",
        json={"event": "slot", "name": "cuisine", "value": "thai"},
    )
    assert one.status == 200
    assert (await one.json())["slots"]["cuisine"] == "thai"
    many = await api.post(
        "/conversations/dave/tracker/events?include_events=ALL",
        json=[
            {"event": "slot", "name": "num_people", "value": 3},
            {"event": "bot", "text": "noted"},
        ],
    )
    tracker = await many.json()
    assert tracker["slots"] == {**tracker["slots"], "cuisine": "thai", "num_people": 3}
    # A new conversation starts its session first, as Rasa's.
    assert [e["event"] for e in tracker["events"]] == [
        "action", "session_started", "action", "slot", "slot", "bot",
    ]  # fmt: skip
    assert all(isinstance(e["timestamp"], float) for e in tracker["events"])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"event": "nonsense"}, "unknown event type"),
        ({"name": "x"}, "'event'"),
        ({"event": "slot"}, "'name'"),
        ([{"event": "bot", "text": 5}], "'text'"),
        ({"event": "user", "parse_data": []}, "parse_data"),
        ([{"event": "bot"}, 3], "expected an object"),
    ],
)
async def test_invalid_events_are_a_400_and_store_nothing(
    api: TestClient, body: object, needle: str
) -> None:
    response = await api.post("/conversations/erin/tracker/events", json=body)
    assert response.status == 400
    error = await response.json()
    assert error["reason"] == "InvalidEvent" and needle in error["message"]
    assert (await api.get("/conversations/erin/story")).status == 404  # nothing stored


async def test_replace_events(api: TestClient) -> None:
    await say(api, "frank", "/greet")
    replaced = await api.put(
        "/conversations/frank/tracker/events",
        json=[
            {"event": "action", "name": "action_session_start"},
            {"event": "session_started"},
            {"event": "slot", "name": "cuisine", "value": "greek"},
            {"event": "action", "name": "action_listen"},
        ],
    )
    assert replaced.status == 200
    tracker = await replaced.json()
    kinds = [e["event"] for e in tracker["events"]]
    assert kinds == ["action", "session_started", "slot", "action"]
    assert tracker["slots"]["cuisine"] == "greek"
    everything = await (await api.get("/conversations/frank/tracker?include_events=ALL")).json()
    assert "user" in [e["event"] for e in everything["events"]]  # kept: the store only appends
    assert (await api.put("/conversations/frank/tracker/events", json={})).status == 400
    # The conversation goes on from the replaced events.
    answer = await say(api, "frank", "/bot_challenge")
    assert answer == [
        {"recipient_id": "frank", "text": "I am a bot: a restaurant booking assistant."}
    ]


async def test_post_message_logs_without_answering(api: TestClient) -> None:
    response = await api.post(
        "/conversations/gina/messages", json={"text": "/greet", "sender": "user"}
    )
    assert response.status == 200
    tracker = await response.json()
    kinds = [e["event"] for e in tracker["events"]]
    assert kinds[-1] == "user" and "bot" not in kinds
    assert tracker["latest_message"]["intent"]["name"] == "greet"

    given = await api.post(
        "/conversations/gina/messages",
        json={
            "text": "four people",
            "sender": "user",
            "parse_data": {
                "intent": {"name": "inform", "confidence": 0.9},
                "entities": [{"entity": "number", "value": 4, "start": 0, "end": 4}],
            },
        },
    )
    assert (await given.json())["slots"]["num_people"] == 4

    bot = await api.post("/conversations/gina/messages", json={"text": "hi", "sender": "bot"})
    assert bot.status == 400 and "sender" in (await bot.json())["message"]

    # A malformed parse_data is the client's mistake: a 400 naming it (was a 500), nothing stored.
    before = len((await (await api.get("/conversations/gina/tracker")).json())["events"])
    for parse_data, key in (
        ({"intent": "greet"}, "parse_data.intent"),
        ({"intent": {"name": "greet"}, "entities": "zz"}, "parse_data.entities"),
        ({"intent": {"name": 5}}, "parse_data.intent.name"),
        ({"intent": {"name": "greet"}, "intent_ranking": ["greet"]}, "parse_data.intent_ranking"),
    ):
        bad = await api.post(
            "/conversations/gina/messages",
            json={"text": "x", "sender": "user", "parse_data": parse_data},
        )
        assert bad.status == 400, parse_data
        assert key in (await bad.json())["message"]
    after = len((await (await api.get("/conversations/gina/tracker")).json())["events"])
    assert after == before


async def test_trigger_intent(api: TestClient) -> None:
    response = await api.post(
        "/conversations/hank/trigger_intent",
        json={"name": "request_restaurant", "entities": {"cuisine": "indian"}},
    )
    assert response.status == 200
    body = await response.json()
    assert body["tracker"]["slots"]["cuisine"] == "indian"
    # Rasa's UserUttered.create_external: the intent's name alone, marked external.
    assert body["tracker"]["latest_message"]["intent"] == {"name": "request_restaurant"}
    assert body["tracker"]["latest_message"]["metadata"] == {"is_external": True}
    assert body["messages"] and body["messages"][0]["recipient_id"] == "hank"
    user = [e for e in body["tracker"]["events"] if e["event"] == "user"][-1]
    assert user["text"] == "EXTERNAL: request_restaurant"
    assert (user["metadata"], user["message_id"]) == ({"is_external": True}, None)

    unknown = await api.post("/conversations/hank/trigger_intent", json={"name": "fly"})
    assert unknown.status == 404 and "fly" in (await unknown.json())["message"]
    bad = await api.post(
        "/conversations/hank/trigger_intent", json={"name": "greet", "entities": "x"}
    )
    assert bad.status == 400


JSON_TYPE = {"Content-Type": "application/json"}


async def test_execute_runs_one_action(api: TestClient) -> None:
    response = await api.post(
        "/conversations/jack/execute",
        json={"name": "utter_iamabot", "policy": "manual", "confidence": 0.7},
    )
    assert response.status == 200
    body = await response.json()
    assert body["messages"] == [
        {"recipient_id": "jack", "text": "I am a bot: a restaurant booking assistant."}
    ]
    action = [e for e in body["tracker"]["events"] if e["event"] == "action"][-1]
    assert (action["name"], action["policy"], action["confidence"]) == (
        "utter_iamabot",
        "manual",
        0.7,
    )
    missing = await api.post("/conversations/jack/execute", json={"name": "action_fly"})
    assert missing.status == 404
    bad = await api.post(
        "/conversations/jack/execute", json={"name": "utter_greet", "confidence": "high"}
    )
    assert bad.status == 400
    # An integer no float holds is no JSON number (was a 500: float() overflowed)
    huge = '{"name": "utter_greet", "confidence": 1' + "0" * 400 + "}"
    bad = await api.post("/conversations/jack/execute", data=huge, headers=JSON_TYPE)
    assert bad.status == 400, await bad.text()
    assert "beyond the range of a number" in (await bad.json())["message"]


async def test_domain_as_json_or_yaml(api: TestClient) -> None:
    as_json = await api.get("/domain")
    assert as_json.status == 200 and "greet" in (await as_json.json())["intents"]
    as_yaml = await api.get("/domain", headers={"Accept": "application/yaml"})
    assert as_yaml.status == 200 and as_yaml.content_type == "application/x-yaml"  # as Rasa's
    assert "restaurant_form" in yaml.safe_load(await as_yaml.text())["forms"]
    refused = await api.get("/domain", headers={"Accept": "text/html"})
    assert refused.status == 406


async def test_parse(api: TestClient) -> None:
    response = await api.post(
        "/model/parse", json={"text": '/inform{"cuisine": "thai"}', "message_id": "m1"}
    )
    assert response.status == 200
    parsed = await response.json()
    assert parsed["intent"]["name"] == "inform"
    assert parsed["entities"][0]["value"] == "thai"
    assert parsed["message_id"] == "m1"
    assert (await api.post("/model/parse", json={"message": "hi"})).status == 400


async def test_parse_in_another_services_format(api: TestClient) -> None:
    """Rasa's ``emulation_mode``: the same parse as Wit, LUIS or Dialogflow answer it."""
    body = {"text": '/inform{"cuisine": "thai"}'}
    wit = await (await api.post("/model/parse?emulation_mode=wit", json=body)).json()
    assert wit[0]["intent"] == "inform" and wit[0]["_text"] == body["text"]
    assert wit[0]["entities"]["cuisine"][0]["value"] == "thai"
    luis = await (await api.post("/model/parse?emulation_mode=LUIS", json=body)).json()
    assert luis["topScoringIntent"] == {"intent": "inform", "score": 1.0}
    assert luis["entities"][0]["type"] == "cuisine" and luis["entities"][0]["entity"] == "thai"
    flow = await (await api.post("/model/parse?emulation_mode=dialogflow", json=body)).json()
    assert flow["result"]["action"] == "inform"
    assert flow["result"]["parameters"] == {"cuisine": ["thai"]}
    bad = await api.post("/model/parse?emulation_mode=bogus", json=body)
    assert bad.status == 400 and "bogus" in (await bad.json())["message"]


async def test_status_and_version(api: TestClient) -> None:
    status = await (await api.get("/status")).json()
    assert status["num_active_training_jobs"] == 0 and status["model_id"]
    version = await (await api.get("/version")).json()
    assert version["version"]


async def test_replace_the_model_keeps_conversations(
    api: TestClient, moodbot_model: TrainedModel, tmp_path: Path
) -> None:
    await say(api, "kim", "/greet")
    path = tmp_path / "mood.model"
    moodbot_model.to_file(path)

    response = await api.put("/model", json={"model_file": str(path)})
    assert response.status == 204
    assert "mood_great" in (await (await api.get("/domain")).json())["intents"]
    assert (await (await api.get("/status")).json())["model_file"] == str(path)
    tracker = await (await api.get("/conversations/kim/tracker")).json()
    assert [e["event"] for e in tracker["events"]].count("user") == 1
    assert await say(api, "kim", "/mood_great")  # the moodbot answers now


async def test_upload_a_model(
    api: TestClient, moodbot_model: TrainedModel, restaurant_model: TrainedModel, tmp_path: Path
) -> None:
    path = tmp_path / "mood.model"
    moodbot_model.to_file(path)
    response = await api.put(
        "/model", data=path.read_bytes(), headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status == 204
    assert "mood_great" in (await (await api.get("/domain")).json())["intents"]
    # Rasa's JSON body sent as a form (curl -d): read as JSON, not as an upload.
    path = tmp_path / "restaurant.model"
    restaurant_model.to_file(path)
    body = json.dumps({"model_file": str(path)}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await api.put("/model", data=body, headers=form)).status == 204
    assert "restaurant_form" in (await (await api.get("/domain")).json())["forms"]
    # A bad upload names the body, not the server's temporary file.
    bad = await api.put("/model", data=b"not a model", headers=form)
    assert bad.status == 400
    message = (await bad.json())["message"]
    assert "the uploaded body" in message and "chatbot-model-" not in message


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"model_file": "/nowhere/x.model"}}, 400),
        ({"json": {"model_server": {"url": "ftp://127.0.0.1/x"}}}, 400),
        ({"json": {"model_server": {"url": f"http://127.0.0.1:{free_port()}/x"}}}, 502),
        ({"json": {}}, 400),
        ({"data": b"not a model", "headers": {"Content-Type": "application/octet-stream"}}, 400),
        ({"data": b"", "headers": {"Content-Type": "application/octet-stream"}}, 400),
    ],
)
async def test_bad_model_is_refused_and_the_old_one_stays(
    api: TestClient, kwargs: dict[str, object], status: int
) -> None:
    response = await api.put("/model", **kwargs)  # type: ignore[arg-type]
    assert response.status == status
    assert (await response.json())["status"] == "failure"
    assert "restaurant_form" in (await (await api.get("/domain")).json())["forms"]


def _inconsistent(source: TrainedModel, target: Path, part: str) -> bytes:
    """``source`` saved with one part that does not fit the rest, under a valid checksum."""
    source.to_file(target)
    meta, tensors = model_file.load(target)
    if part == "tensor":  # the LSTM's output bias one label short
        lstm = next(i for i, p in enumerate(meta["policies"]) if p["name"] == "LSTMPolicy")
        key = f"policy.{lstm}.model.head.bias"
        tensors[key] = tensors[key][:-1].copy()
    else:  # a response variation that is a number
        meta["domain"]["responses"]["utter_greet"][0] = 1.5
    model_file.save(target, meta, tensors)
    return target.read_bytes()


@pytest.mark.parametrize("part", ["tensor", "domain"])
async def test_an_inconsistent_model_is_refused_and_the_old_one_answers(
    api: TestClient, moodbot_model: TrainedModel, tmp_path: Path, part: str
) -> None:
    """A model file with a valid checksum whose parts do not fit together: a 400 naming the part,
    not a model that fails every message once served (the tensor) or a 500 (the domain)."""
    path = tmp_path / "bad.model"
    body = _inconsistent(moodbot_model, path, part)
    octet = {"Content-Type": "application/octet-stream"}
    for response in (
        await api.put("/model", data=body, headers=octet),
        await api.put("/model", json={"model_file": str(path)}),
    ):
        assert response.status == 400
        answer = await response.json()
        assert answer["reason"] == "BadModel"
        assert ("head.bias" if part == "tensor" else "utter_greet") in answer["message"]
    assert "restaurant_form" in (await (await api.get("/domain")).json())["forms"]
    assert await say(api, "kim", "/greet")


async def test_model_upload_is_capped(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), enable_api=True, max_model_bytes=1000)
    response = await client.put(
        "/model", data=b"x" * 5000, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status == 413


async def test_unload_the_model_then_load_one_again(
    api: TestClient, moodbot_model: TrainedModel, tmp_path: Path
) -> None:
    await say(api, "kim", "/greet")

    assert (await api.delete("/model")).status == 204

    calls: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", "/status", None),  # as Rasa: a readiness check sees that no model is loaded
        ("POST", "/conversations/kim/messages", {"text": "/greet", "sender": "user"}),
        ("POST", "/conversations/kim/trigger_intent", {"name": "greet"}),
        ("POST", "/conversations/kim/execute", {"name": "utter_greet"}),
        ("POST", "/conversations/kim/predict", None),
        ("GET", "/conversations/kim/tracker", None),
        ("POST", "/model/parse", {"text": "hi"}),
        ("GET", "/domain", None),
    ]
    for method, url, body in calls:
        response = await api.request(method, url, json=body)
        assert response.status == 409, url
        error = await response.json()
        assert error["reason"] == "NoModelLoaded" and "no model is loaded" in error["message"]
    # A user's message to a channel: 503, retry later.
    webhook = await api.post("/webhooks/rest/webhook", json={"sender": "kim", "message": "/greet"})
    assert webhook.status == 503 and int(webhook.headers["Retry-After"]) >= 1
    assert (await webhook.json())["reason"] == "NoModelLoaded"
    # The conversations are still there.
    assert (await api.get("/conversations/kim/story")).status == 200
    assert (await api.delete("/model")).status == 204  # unloading twice is fine

    path = tmp_path / "mood.model"
    moodbot_model.to_file(path)
    assert (await api.put("/model", json={"model_file": str(path)})).status == 204
    assert (await (await api.get("/status")).json())["model_file"] == str(path)
    assert await say(api, "kim", "/mood_great")
    tracker = await (await api.get("/conversations/kim/tracker")).json()
    assert [e["event"] for e in tracker["events"]].count("user") == 2
