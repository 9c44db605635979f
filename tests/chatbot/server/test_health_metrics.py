"""``/health`` says which components answer; ``/metrics`` counts messages, latencies and errors."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from chatbot.actions.remote import CircuitBreaker, HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.nlu.duckling import DucklingConfig
from chatbot.server.metrics import Metrics, merge_expositions
from tests.chatbot.nlu.fake_duckling import FakeDuckling
from tests.chatbot.server.support import StartServer, say


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_health_without_an_action_server(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model))
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "components": {
            "model": {"status": "ok"},
            "store": {"status": "ok"},
            "lock_store": {"status": "ok"},
            "action_server": {"status": "not_configured"},
        },
    }


async def test_health_is_unavailable_until_a_model_is_loaded(
    start_server: StartServer, moodbot_model: TrainedModel, tmp_path: Path
) -> None:
    # A server waiting for its model server's first model answers every message with a 503: a
    # load balancer's readiness check must not send it traffic. "/" still says hello (liveness).
    client = await start_server(Agent(None), enable_api=True, rate_limit=None)
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert body["components"]["model"] == {"status": "not_loaded"}
    assert body["components"]["store"] == {"status": "ok"}
    assert (await client.get("/")).status == 200

    path = tmp_path / "mood.model"
    moodbot_model.to_file(path)
    assert (await client.put("/model", json={"model_file": str(path)})).status == 204
    response = await client.get("/health")
    assert response.status == 200
    assert (await response.json())["components"]["model"] == {"status": "ok"}

    assert (await client.delete("/model")).status == 204
    assert (await client.get("/health")).status == 503


async def test_health_with_an_action_server_that_answers_or_not(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    async def sdk_health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    fake = web.Application()
    fake.router.add_get("/health", sdk_health)
    async with TestServer(fake) as server:
        up = HTTPActionExecutor(str(server.make_url("/webhook")))
        client = await start_server(Agent(restaurant_model, action_executor=up))
        response = await client.get("/health")
        assert response.status == 200
        assert (await response.json())["components"]["action_server"] == {"status": "ok"}

    down = HTTPActionExecutor(f"http://127.0.0.1:{closed_port()}/webhook")
    client = await start_server(Agent(restaurant_model, action_executor=down))
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert body["components"]["action_server"] == {"status": "unavailable"}
    assert body["components"]["store"] == {"status": "ok"}


async def test_health_says_whether_duckling_answers_without_failing_for_it(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    """A DucklingEntityExtractor's server is a component of its own; without it messages are
    answered (only without its entities), so it degrades the status and keeps the 200."""
    duckling = FakeDuckling()
    await duckling.start()
    try:
        model = dataclasses.replace(restaurant_model, duckling=DucklingConfig(url=duckling.url))
        client = await start_server(Agent(model))
        response = await client.get("/health")
        body = await response.json()
        assert (response.status, body["status"]) == (200, "ok"), body
        assert body["components"]["duckling"] == {"status": "ok"}
        duckling.fault = "error"
        response = await client.get("/health")
        body = await response.json()
        assert (response.status, body["status"]) == (200, "degraded"), body
        assert body["components"]["duckling"] == {"status": "unavailable"}
    finally:
        await duckling.close()
    gone = DucklingConfig(url=f"http://127.0.0.1:{closed_port()}")
    client = await start_server(Agent(dataclasses.replace(restaurant_model, duckling=gone)))
    body = await (await client.get("/health")).json()
    assert (
        body["status"] == "degraded" and body["components"]["duckling"]["status"] == "unavailable"
    )
    client = await start_server(Agent(restaurant_model))  # no Duckling in the pipeline
    assert "duckling" not in (await (await client.get("/health")).json())["components"]


async def test_health_reports_an_open_circuit(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    executor = HTTPActionExecutor(f"http://127.0.0.1:{closed_port()}/webhook", breaker=breaker)
    breaker.failed()
    client = await start_server(Agent(restaurant_model, action_executor=executor))
    body = await (await client.get("/health")).json()
    assert body["components"]["action_server"] == {"status": "circuit_open"}
    metrics = await (await client.get("/metrics")).text()
    assert "chatbot_action_server_circuit_open 1.0" in metrics
    assert "chatbot_action_server_failures_total 1.0" in metrics


async def test_metrics_count_messages_latency_and_errors(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), enable_api=True)
    await say(client, "alice", "/greet")
    await say(client, "bob", "/greet")
    await client.post("/webhooks/rest/webhook", data=b"{")
    await client.get("/conversations/alice/tracker")
    await client.get("/conversations/nobody/story")

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'chatbot_messages_total{channel="rest",outcome="ok"} 2.0' in text
    assert 'chatbot_message_seconds_count{channel="rest"} 2.0' in text
    assert 'chatbot_message_seconds_bucket{channel="rest",le="+Inf"} 2.0' in text
    assert (
        'chatbot_http_requests_total{method="POST",route="/webhooks/rest/webhook",status="400"} 1.0'
        in text
    )
    route = "/conversations/{conversation_id}/story"
    assert f'chatbot_http_requests_total{{method="GET",route="{route}",status="404"}} 1.0' in text
    assert "alice" not in text and "nobody" not in text  # no ids as labels


async def test_labels_a_client_makes_up_do_not_grow_the_metrics(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), enable_api=True, rate_limit=None)
    for i in range(5):
        body = {"sender": f"s{i}", "message": "/greet", "input_channel": f"made-up-{i}"}
        assert (await client.post("/webhooks/rest/webhook", json=body)).status == 200
        # HTTP's parser takes only methods it knows; WebDAV's are among them.
        await client.request(["PROPFIND", "MKCOL", "LOCK", "UNLOCK", "SEARCH"][i], "/status")
    # The API's own channel, and a client-given one naming a mounted channel, keep their label.
    api_message = {"text": "/greet", "sender": "user"}
    assert (await client.post("/conversations/a/messages", json=api_message)).status == 200
    body = {"sender": "t", "message": "/greet", "input_channel": "rest"}
    assert (await client.post("/webhooks/rest/webhook", json=body)).status == 200
    text = await (await client.get("/metrics")).text()
    assert "made-up" not in text and "PROPFIND" not in text
    assert 'chatbot_messages_total{channel="other",outcome="ok"} 5.0' in text
    assert 'chatbot_messages_total{channel="rest",outcome="ok"} 1.0' in text
    assert 'chatbot_messages_total{channel="api",outcome="ok"} 1.0' in text
    assert 'chatbot_http_requests_total{method="other",route="unmatched",status="405"} 5.0' in text


async def test_failed_turns_are_counted(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    from chatbot.store import SQLStore

    agent = Agent(restaurant_model, store=SQLStore("sqlite:////nonexistent-folder/c.db"))
    client = await start_server(agent)
    assert (await client.post("/webhooks/rest/webhook", json={"message": "hi"})).status == 503
    text = await (await client.get("/metrics")).text()
    assert 'chatbot_messages_total{channel="rest",outcome="error"} 1.0' in text
    assert 'chatbot_errors_total{kind="StoreUnavailable"} 1.0' in text


def test_the_workers_metrics_add_up() -> None:
    """``chatbot run --workers``: a scrape of any worker shows every worker's figures added up
    (counters and histograms summed, the earliest ``_created``, the worst circuit state)."""
    first, second = Metrics(), Metrics()
    first.messages.labels("rest", "ok").inc(3)
    second.messages.labels("rest", "ok").inc(2)
    second.messages.labels("slack", "error").inc()
    first.message_seconds.labels("rest").observe(0.002)
    second.message_seconds.labels("rest").observe(0.2)
    first.watch_in_flight(lambda: 2)
    second.watch_in_flight(lambda: 5)
    breakers = [
        SimpleNamespace(breaker=SimpleNamespace(total_failures=n, is_open=lambda o=o: o))
        for n, o in ((1, False), (4, True))
    ]
    first.watch_action_server(lambda: breakers[0])
    second.watch_action_server(lambda: breakers[1])
    assert merge_expositions([first.own().decode()]) == first.own()  # alone: unchanged
    first.others = lambda: [second.own().decode(), "not # prometheus {"]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(first.render().decode())
        for s in family.samples
    }
    assert samples[("chatbot_messages_total", (("channel", "rest"), ("outcome", "ok")))] == 5
    assert samples[("chatbot_messages_total", (("channel", "slack"), ("outcome", "error")))] == 1
    assert samples[("chatbot_message_seconds_count", (("channel", "rest"),))] == 2
    assert samples[("chatbot_message_seconds_bucket", (("channel", "rest"), ("le", "0.0025")))] == 1
    assert samples[("chatbot_message_seconds_sum", (("channel", "rest"),))] == pytest.approx(0.202)
    assert samples[("chatbot_messages_in_flight", ())] == 7
    assert samples[("chatbot_action_server_failures_total", ())] == 5
    assert samples[("chatbot_action_server_circuit_open", ())] == 1
    created = ("chatbot_messages_created", (("channel", "rest"), ("outcome", "ok")))
    own_created = next(
        s.value
        for family in text_string_to_metric_families(first.own().decode())
        for s in family.samples
        if (s.name, tuple(sorted(s.labels.items()))) == created
    )
    assert samples[created] == own_created  # the earlier of the two
