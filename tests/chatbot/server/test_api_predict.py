"""The HTTP API's predict routes: ``POST /conversations/{id}/predict`` on a stored conversation,
``POST /model/predict`` on posted events (Rasa's); nothing is stored or run."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.dialogue.policy import Policy
from tests.chatbot.server.support import StartServer, say


async def test_predict_scores_the_next_action(api: TestClient) -> None:
    await api.post("/conversations/ivy/messages", json={"text": "/greet", "sender": "user"})
    response = await api.post("/conversations/ivy/predict")
    assert response.status == 200
    body = await response.json()
    assert body["scores"][0]["action"] == "utter_greet"
    assert body["scores"][0]["score"] == body["confidence"] > 0.5
    names = [s["action"] for s in body["scores"]]
    assert len(names) == len(set(names)) > 20
    assert {"action_listen", "utter_goodbye", "restaurant_form", "action_restart"} <= set(names)
    assert body["policy"] and body["tracker"]["sender_id"] == "ivy"
    # Predicting changes nothing.
    tracker = await (await api.get("/conversations/ivy/tracker")).json()
    assert tracker["latest_action_name"] == "action_listen"


async def test_predict_gives_the_lstm_scores_of_every_action(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    # The LSTM alone (no rules, no memorized stories, no fallback): its whole distribution.
    lstm: list[Policy] = [p for p in restaurant_model.policies if isinstance(p, LSTMPolicy)]
    model = replace(restaurant_model, policies=lstm, ensemble={"fallback_threshold": 0.0})
    client = await start_server(Agent(model), enable_api=True)
    await say(client, "ivy", "/greet")
    await client.post("/conversations/ivy/messages", json={"text": "/goodbye", "sender": "user"})

    body = await (await client.post("/conversations/ivy/predict")).json()

    scores = [s["score"] for s in body["scores"]]
    assert len(scores) == len(restaurant_model.domain.action_names)
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-4)
    assert sum(1 for s in scores if s > 0) > 1
    assert body["policy"] == "LSTMPolicy"
    assert body["scores"][0]["score"] == body["confidence"] == max(scores)


async def test_predict_bad_input(api: TestClient) -> None:
    await say(api, "ivy", "/greet")
    assert (await api.post("/conversations/ivy/predict?include_events=SOME")).status == 400
    assert (await api.post("/conversations/ivy/predict?until=never")).status == 400
    assert (await api.post("/conversations/nobody/predict")).status == 404
    assert (await api.get("/conversations/ivy/predict")).status == 405


async def test_model_predict_after_posted_events(api: TestClient) -> None:
    # The events of a stored conversation, posted: the same prediction, nothing stored.
    await api.post("/conversations/ivy/messages", json={"text": "/greet", "sender": "user"})
    stored = await (await api.post("/conversations/ivy/predict")).json()
    events = (await (await api.get("/conversations/ivy/tracker")).json())["events"]

    response = await api.post("/model/predict", json=events)

    assert response.status == 200
    body = await response.json()
    assert body["scores"] == stored["scores"] and body["scores"][0]["action"] == "utter_greet"
    assert (body["policy"], body["confidence"]) == (stored["policy"], stored["confidence"])
    assert body["tracker"]["sender_id"] == "default"
    assert body["tracker"]["events"] == events
    assert body["tracker"]["latest_message"]["intent"]["name"] == "greet"
    assert (await api.get("/conversations/default/story")).status == 404  # nothing stored


async def test_model_predict_reads_the_posted_events_not_a_stored_conversation(
    api: TestClient,
) -> None:
    # A stored conversation under Rasa's sender id does not leak into the prediction.
    await say(api, "default", "/greet")
    await api.post("/conversations/default/messages", json={"text": "/goodbye", "sender": "user"})
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "/greet", "parse_data": {"intent": {"name": "greet"}}},
    ]
    body = await (
        await api.post("/model/predict", json=events, params={"include_events": "ALL"})
    ).json()
    assert body["scores"][0]["action"] == "utter_greet"
    posted = body["tracker"]["events"]
    assert [(e["event"], e.get("name"), e.get("text")) for e in posted] == [
        ("action", "action_listen", None),
        ("user", None, "/greet"),
    ]
    stored = await (await api.post("/conversations/default/predict")).json()
    assert stored["scores"][0]["action"] == "utter_goodbye"


async def test_model_predict_with_the_lstm_keeps_no_state_of_the_request(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    # The whole history read (the bot's config reads the last 5 states, which caches nothing).
    trained = next(p for p in restaurant_model.policies if isinstance(p, LSTMPolicy))
    runtime = copy.copy(trained.runtime)
    runtime.config = replace(runtime.config, max_history=None)
    lstm = [LSTMPolicy(runtime, trained.featurizer, trained.trained, masks=trained.masks)]
    model = replace(restaurant_model, policies=list(lstm), ensemble={"fallback_threshold": 0.0})
    client = await start_server(Agent(model), enable_api=True)
    await say(client, "ivy", "/greet")
    await client.post("/conversations/ivy/messages", json={"text": "/goodbye", "sender": "user"})
    stored = await (await client.post("/conversations/ivy/predict")).json()
    events = (await (await client.get("/conversations/ivy/tracker")).json())["events"]
    cached = len(lstm[0]._cache)
    assert cached == 1  # ivy's

    body = await (await client.post("/model/predict", json=events)).json()

    assert body["policy"] == "LSTMPolicy"
    assert [s["action"] for s in body["scores"]] == [s["action"] for s in stored["scores"]]
    for ours, theirs in zip(body["scores"], stored["scores"], strict=True):
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-6)
    assert len(lstm[0]._cache) == cached


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "no events"),
        ({"event": "user", "text": "hi"}, "array of events"),
        ([{"event": "fly"}], "events[0]"),
        ([{"event": "slot", "name": 3}], "events[0]"),
    ],
)
async def test_model_predict_bad_events(api: TestClient, body: object, message: str) -> None:
    response = await api.post("/model/predict", json=body)
    assert response.status == 400
    assert message in (await response.json())["message"]
