"""CORS: browsers on the allowed origins may call the server (``--cors``)."""

from __future__ import annotations

import pytest

from chatbot.agent import Agent, TrainedModel
from tests.chatbot.server.support import StartServer

PREFLIGHT = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize(
    ("cors", "origin", "allowed"),
    [
        ((), "https://shop.example", None),
        (("*",), "https://shop.example", "*"),
        (("https://shop.example",), "https://shop.example", "https://shop.example"),
        (("https://shop.example",), "https://evil.example", None),
    ],
)
async def test_cors(
    start_server: StartServer,
    restaurant_model: TrainedModel,
    cors: tuple[str, ...],
    origin: str,
    allowed: str | None,
) -> None:
    client = await start_server(Agent(restaurant_model), cors=cors, enable_api=True)
    headers = {"Origin": origin}
    answer = await client.post(
        "/webhooks/rest/webhook", json={"sender": "a", "message": "/greet"}, headers=headers
    )
    assert answer.status == 200
    assert answer.headers.get("Access-Control-Allow-Origin") == allowed
    error = await client.get("/conversations/nobody/story", headers=headers)
    assert error.status == 404
    assert error.headers.get("Access-Control-Allow-Origin") == allowed
    preflight = await client.options("/webhooks/rest/webhook", headers={**PREFLIGHT, **headers})
    if allowed:
        assert preflight.status == 204
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    else:
        assert preflight.status == 405
