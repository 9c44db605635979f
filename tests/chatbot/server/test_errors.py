"""Bad input is a 4xx with a JSON error, never a 500 or a traceback; a lost database is an apology
to the user, a 503 to the client, and the server recovers when the database returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import make_url

from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError, LockTimeout, StoreUnavailable
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.server.errors import APOLOGY, failure_of
from chatbot.store import SQLStore
from tests.chatbot.server.support import StartServer, say
from tests.services import TcpProxy

REST = "/webhooks/rest/webhook"


def assert_json_error(body: Any, status: int) -> None:
    assert body["status"] == "failure" and body["code"] == status, body
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'"hello"', 400, "must be a JSON object"),
        (b'{"sender": "a"}', 400, "'message'"),
        (b'{"sender": "a", "message": 5}', 400, "'message'"),
        (b'{"sender": "a", "message": null}', 400, "'message'"),
        (b'{"sender": ["a"], "message": "hi"}', 400, "'sender'"),
        (b'{"sender": "", "message": "hi"}', 400, "'sender'"),
        (b'{"sender": true, "message": "hi"}', 400, "'sender'"),
        (b'{"sender": "a", "message": "hi", "metadata": [1]}', 400, "'metadata'"),
        (b'{"sender": "a", "message": "hi", "input_channel": 3}', 400, "'input_channel'"),
        (b'{"sender": "a", "message": NaN}', 400, "not valid JSON"),
        # Read as infinity, it was stored and written back as `Infinity` in the tracker.
        (b'{"sender": "a", "message": "hi", "metadata": {"x": 1e999}}', 400, "not valid JSON"),
        (b"[" * 100_000, 400, "nests too deeply"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nests too deeply"),
        (b"\xff\xfe", 400, "not valid JSON"),
        # A lone surrogate (an unpaired UTF-16 half) is not Unicode text: no store can hold it.
        (b'{"sender": "a", "message": "hi \\ud800"}', 400, "'message' holds a lone surrogate"),
        (b'{"sender": "a", "message": "\\uDFFF\\ud83d"}', 400, "'message' holds a lone"),
        (b'{"sender": "a", "message": "\xed\xa0\x80"}', 400, "'message' holds a lone"),
        (
            b'{"sender": "a", "message": "hi", "metadata": {"k": [1, "\\udc00"]}}',
            400,
            "'metadata' -> 'k' -> [1] holds a lone surrogate",
        ),
        (b'{"sender": "a", "message": "hi", "metadata": {"\\ud800": 1}}', 400, "a key holds"),
        (b'{"sender": "a\\ud800", "message": "hi"}', 400, "'sender' holds a lone surrogate"),
        (b'{"sender": "a\\u0000b", "message": "hi"}', 400, "'sender': a conversation id cannot"),
    ],
)
async def test_bad_rest_bodies(api: TestClient, body: bytes, status: int, needle: str) -> None:
    response = await api.post(REST, data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    error = await response.json()
    assert_json_error(error, status)
    assert needle in error["message"]


async def test_long_sender_is_a_400(api: TestClient) -> None:
    response = await api.post(REST, json={"sender": "s" * 256, "message": "hi"})
    assert response.status == 400


async def test_surrogate_pairs_are_text(api: TestClient) -> None:
    # JSON's escapes of a character beyond the BMP (as ensure_ascii encoders send an emoji).
    body = b'{"sender": "\\ud83d\\ude00", "message": "/greet", "metadata": {"m": "\\ud83d\\ude00"}}'
    response = await api.post(REST, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert (await response.json())[0]["recipient_id"] == "\U0001f600"


async def test_a_conversation_id_a_store_cannot_hold_is_a_400(api: TestClient) -> None:
    response = await api.get("/conversations/a%00b/tracker")  # PostgreSQL text holds no NUL
    assert response.status == 400
    error = await response.json()
    assert_json_error(error, 400)
    assert "conversation id" in error["message"]


async def test_numeric_sender_is_accepted(api: TestClient) -> None:
    response = await api.post(REST, json={"sender": 42, "message": "/greet"})
    assert response.status == 200
    assert (await response.json())[0]["recipient_id"] == "42"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/conversations/a/tracker/events", b"{"),
        ("PUT", "/conversations/a/tracker/events", b'{"event": "restart"}'),
        ("POST", "/conversations/a/messages", b'{"sender": "user"}'),
        ("POST", "/conversations/a/messages", b'{"text": 1, "sender": "user"}'),
        ("POST", "/conversations/a/messages", b'{"text": "x", "sender": "user", "parse_data": 1}'),
        ("POST", "/conversations/a/trigger_intent", b"{}"),
        ("POST", "/conversations/a/trigger_intent", b'{"name": 5}'),
        ("POST", "/conversations/a/execute", b"[]"),
        ("POST", "/conversations/a/execute", b'{"name": null}'),
        ("POST", "/model/parse", b'{"text": {"a": 1}}'),
        ("PUT", "/model", b'{"model_file": 7}'),
    ],
)
async def test_bad_api_bodies(api: TestClient, method: str, path: str, body: bytes) -> None:
    response = await api.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_json_error(await response.json(), 400)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/route", 404),
        ("DELETE", "/conversations/a/tracker", 405),
        ("GET", "/webhooks/rest/webhook", 405),
        ("GET", "/webhooks/nochannel/webhook", 404),
    ],
)
async def test_unknown_routes_and_methods(
    api: TestClient, method: str, path: str, status: int
) -> None:
    response = await api.request(method, path)
    assert response.status == status
    assert_json_error(await response.json(), status)
    if status == 405:
        assert "Allow" in response.headers


async def test_an_unexpected_error_is_a_500_without_details(
    start_server: StartServer, restaurant_model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(restaurant_model)

    async def broken(text: str) -> dict[str, Any]:
        raise RuntimeError("secret internals")

    agent.processor.parse = broken
    client = await start_server(agent)
    response = await client.post(REST, json={"sender": "a", "message": "hi"})
    assert response.status == 500
    assert await response.json() == [{"recipient_id": "a", "text": APOLOGY}]
    assert "secret internals" not in await response.text()
    assert "secret internals" in caplog.text  # logged, with its traceback, for the operator


def test_failure_table() -> None:
    busy = failure_of(LockTimeout("a", 1.0))
    assert (busy.status, busy.apology) == (503, True)
    assert failure_of(ValueError("x")).status == 500


async def test_a_lost_sqlite_database_is_an_apology_then_recovers(
    start_server: StartServer, restaurant_model: TrainedModel, tmp_path: Path
) -> None:
    folder = tmp_path / "gone"
    client = await start_server(
        Agent(restaurant_model, store=SQLStore(f"sqlite:///{folder / 'c.db'}")), enable_api=True
    )
    response = await client.post(REST, json={"sender": "alice", "message": "/greet"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert await response.json() == [{"recipient_id": "alice", "text": APOLOGY}]
    api = await client.get("/conversations/alice/tracker")
    assert api.status == 503
    assert (await api.json())["reason"] == "StoreUnavailable"
    health = await client.get("/health")
    assert health.status == 503
    assert (await health.json())["components"]["store"] == {"status": "unavailable"}

    folder.mkdir()  # the database is back

    assert (await client.get("/health")).status == 200
    assert await say(client, "alice", "/greet")
    tracker = await (await client.get("/conversations/alice/tracker")).json()
    assert [e["event"] for e in tracker["events"]].count("user") == 1


async def test_a_store_required_at_start_stops_the_start_when_it_is_missing(
    start_server: StartServer, restaurant_model: TrainedModel, tmp_path: Path
) -> None:
    # ``chatbot run`` requires it; the factory's default starts anyway (the test above).
    store = SQLStore(f"sqlite:///{tmp_path / 'gone' / 'c.db'}")
    with pytest.raises(
        StoreUnavailable, match=r"conversation store unavailable \(sqlite at .*gone"
    ):
        await start_server(Agent(restaurant_model, store=store), require_store_at_start=True)

    (tmp_path / "gone").mkdir()
    store = SQLStore(f"sqlite:///{tmp_path / 'gone' / 'c.db'}")
    client = await start_server(Agent(restaurant_model, store=store), require_store_at_start=True)
    assert await say(client, "alice", "/greet")


@pytest.mark.services
async def test_a_lost_postgresql_is_an_apology_then_recovers(
    start_server: StartServer, restaurant_model: TrainedModel, postgres_url: str
) -> None:
    target = make_url(postgres_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    store = SQLStore(target.set(host="127.0.0.1", port=port), connect_timeout=2.0)
    try:
        client = await start_server(Agent(restaurant_model, store=store))
        assert await say(client, "alice", "/greet")

        await proxy.stop()
        response = await client.post(REST, json={"sender": "alice", "message": "/goodbye"})
        assert response.status == 503
        assert await response.json() == [{"recipient_id": "alice", "text": APOLOGY}]

        await proxy.start()
        assert await say(client, "alice", "/goodbye")
    finally:
        await proxy.stop()


async def test_unknown_channel_in_credentials_is_a_config_error(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    credentials = Credentials(
        {
            "rest": EndpointBlock("rest", {}),
            "carrier_pigeon": EndpointBlock("carrier_pigeon", {}),
        }
    )
    with pytest.raises(ConfigError, match=r"carrier_pigeon.*known channels: .*callback.*rest"):
        await start_server(Agent(restaurant_model), credentials=credentials)
