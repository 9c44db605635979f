"""Rasa's REST channel: ``POST /webhooks/rest/webhook`` answers with the bot's messages."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from chatbot.agent import Agent
from chatbot.server import create_app
from connectors.rest import RestChannel
from tests.connectors.servers import serve

WEBHOOK = "/webhooks/rest/webhook"


async def post(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(WEBHOOK, json=body)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    messages: list[dict[str, Any]] = await response.json()
    return messages


async def test_messages_in_rasa_format(agent: Agent) -> None:
    async with TestClient(TestServer(create_app(agent))) as client:
        greeting = await post(client, {"sender": "ann", "message": "/greet"})
        assert len(greeting) == 1 and set(greeting[0]) == {"recipient_id", "text"}
        assert greeting[0]["recipient_id"] == "ann"

        asked = await post(client, {"sender": "ann", "message": "/request_restaurant"})
        assert asked[0]["text"] == "What cuisine would you like?"
        assert asked[0]["buttons"][0] == {
            "title": "Italian",
            "payload": '/inform{"cuisine": "italian"}',
        }

        for text in ('/inform{"cuisine": "italian"}', '/inform{"number": "2"}', "/affirm"):
            await post(client, {"sender": "ann", "message": text})
        submitted = await post(client, {"sender": "ann", "message": "/deny"})
        assert submitted[0]["text"].startswith("All done!")
        assert submitted[1] == {
            "recipient_id": "ann",
            "image": "https://picsum.photos/seed/terrace/400/300",
        }


async def test_custom_payload_message(agent: Agent) -> None:
    async with TestClient(TestServer(create_app(agent))) as client:
        for text in (
            '/request_restaurant{"cuisine": "thai"}',
            '/inform{"number": "3"}',
            "/deny",
        ):
            await post(client, {"sender": "bo", "message": text})
        submitted = await post(client, {"sender": "bo", "message": "/deny"})
        assert submitted[1] == {
            "recipient_id": "bo",
            "custom": {"type": "booking_confirmation", "cuisine": "thai", "num_people": "3"},
        }


async def test_sender_metadata_and_input_channel(agent: Agent) -> None:
    async with TestClient(TestServer(create_app(agent))) as client:
        messages = await post(client, {"message": "/greet"})
        assert messages[0]["recipient_id"] == "default"  # Rasa's default sender
        await post(
            client,
            {
                "sender": "cy",
                "message": "/greet",
                "metadata": {"page": "/menu"},
                "input_channel": "kiosk",
            },
        )
    events = (await agent.store.load("cy")).events
    user = next(e for e in events if e["event"] == "user")
    assert user["metadata"] == {"page": "/menu"}
    assert user["input_channel"] == "kiosk"


async def test_channel_health(agent: Agent) -> None:
    async with TestClient(TestServer(create_app(agent))) as client:
        response = await client.get("/webhooks/rest/")
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_over_a_real_socket(agent: Agent) -> None:
    body = {"sender": "dee", "message": "/bot_challenge"}
    async with serve(create_app(agent)) as served, aiohttp.ClientSession() as session:
        response = await session.post(f"{served.url}{WEBHOOK}", json=body)
        assert response.status == 200
        assert await response.json() == [
            {"recipient_id": "dee", "text": "I am a bot: a restaurant booking assistant."}
        ]


def test_from_credentials_takes_no_settings() -> None:
    assert isinstance(RestChannel.from_credentials({}), RestChannel)


async def test_a_payload_whose_entities_are_not_json_is_answered_as_text(agent: Agent) -> None:
    # Nested deeper than Python's json reads (it was a RecursionError: a 500), or a NaN.
    deep = '/greet{"cuisine": ' + "[" * 990 + "]" * 990 + "}"
    async with TestClient(TestServer(create_app(agent))) as client:
        for text in (deep, '/greet{"cuisine": NaN}'):
            answer = await post(client, {"sender": "cy", "message": text})
            assert answer and answer[0]["recipient_id"] == "cy"
        events = (await agent.store.load("cy")).events
        assert [e["parse_data"]["entities"] for e in events if e["event"] == "user"] == [[], []]
