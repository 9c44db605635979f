"""The Google Chat channel (Rasa's ``hangouts``) against a fake of Google's certificate endpoint
on loopback, with events signed as Google Chat signs them (``tests.connectors.fake_hangouts``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from connectors.hangouts import HangoutsChannel, chat_message
from tests.connectors.fake_hangouts import OTHER, PROJECT, USER, FakeGoogleCerts, token
from tests.connectors.servers import ServeChannel, Served, serve


def event(kind: str, **more: Any) -> dict[str, Any]:
    user = {"name": USER, "displayName": "Ann Example", "type": "HUMAN"}
    return {
        "type": kind,
        "eventTime": "2026-12-06T01:00:00.000Z",
        "space": {"name": "spaces/AAAA1", "type": "DM", "spaceType": "DIRECT_MESSAGE"},
        "user": user,
        **more,
    }


def message(text: str, **more: Any) -> dict[str, Any]:
    return event(
        "MESSAGE",
        message={"name": "spaces/AAAA1/messages/1", "text": text, "argumentText": text,
                 "sender": {"name": USER}},
        **more,
    )  # fmt: skip


@dataclass
class GoogleChat:
    served: Served
    google: FakeGoogleCerts
    channel: HangoutsChannel
    http: aiohttp.ClientSession

    async def post(self, payload: Any, authorization: str | None) -> tuple[int, Any]:
        headers = {"Authorization": authorization} if authorization is not None else {}
        url = f"{self.served.url}/webhooks/hangouts/webhook"
        async with self.http.post(url, json=payload, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def say(self, payload: dict[str, Any]) -> Any:
        status, answered = await self.post(payload, f"Bearer {token()}")
        assert status == 200, answered
        return answered


@pytest.fixture
def chat_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[GoogleChat]]:
    @asynccontextmanager
    async def start() -> AsyncIterator[GoogleChat]:
        google = FakeGoogleCerts()
        async with serve(google.app) as fake:
            channel = HangoutsChannel.from_credentials(
                {"project_id": int(PROJECT), "certs_url": f"{fake.url}/x509/chat"}
            )
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield GoogleChat(served, google, channel, http)

    return start


async def test_a_conversation_answered_in_the_response(chat_at: Any, agent: Agent) -> None:
    async with chat_at() as chat:
        greeting = await chat.say(message("/greet"))
        assert list(greeting) == ["text"] and greeting["text"].startswith(("Hello", "Hi"))
        asked = await chat.say(message("/request_restaurant"))
        (card,) = asked["cardsV2"]
        widgets = card["card"]["sections"][0]["widgets"]
        assert widgets[0] == {"textParagraph": {"text": "What cuisine would you like?"}}
        italian = widgets[1]["buttonList"]["buttons"][0]
        assert italian == {
            "text": "Italian",
            "onClick": {"action": {"function": '/inform{"cuisine": "italian"}'}},
        }
        clicked = event(
            "CARD_CLICKED", action={"actionMethodName": '/inform{"cuisine": "italian"}'}
        )
        await chat.say(clicked)
        # In a space the app is @mentioned; argumentText is the message without the mention.
        mentioned = message("@Restaurant /goodbye")
        mentioned["message"]["argumentText"] = " /goodbye"
        mentioned["space"] = {"name": "spaces/R1", "type": "ROOM", "displayName": "Lunch"}
        await chat.say(mentioned)
    stored = await agent.store.load(USER)
    users = [e for e in stored.events if e["event"] == "user"]
    assert [e["text"] for e in users] == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        "/goodbye",
    ]
    # Rasa's metadata: the room's name in a space, None in a direct message.
    assert [e["metadata"] for e in users[2:]] == [{"room": None}, {"room": "Lunch"}]


async def test_events_without_googles_token_are_refused_and_never_processed(
    chat_at: Any, agent: Agent
) -> None:
    async with chat_at() as chat:
        forged = {
            "no header": None,
            "not bearer": f"Basic {token()}",
            "not a jwt": "Bearer x.y",
            "another key": f"Bearer {token(OTHER)}",
            "unknown key id": f"Bearer {token(OTHER, kid='nope')}",
            "another project": f"Bearer {token(aud='999')}",
            "another issuer": f"Bearer {token(iss='someone@example.com')}",
            "expired": f"Bearer {token(exp=1_700_000_000)}",
            "no expiry": f"Bearer {token(exp=None)}",
        }
        for name, authorization in forged.items():
            status, _ = await chat.post(message("/greet"), authorization)
            assert status == 401, name
        assert chat.google.fetches == 1  # an unknown key id soon after does not fetch again
        await chat.say(message("/goodbye"))
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/goodbye"]


async def test_added_and_removed_are_rasas_intents_only_where_the_domain_has_them(
    chat_at: Any, agent: Agent
) -> None:
    async with chat_at() as chat:
        assert await chat.say(event("ADDED_TO_SPACE")) == {}  # the restaurant bot has none
        assert await chat.say(event("REMOVED_FROM_SPACE")) == {}
        assert await chat.say(message("   ")) == {}
        assert await chat.say({**message("/greet"), "user": {"name": 5}, "message": {}}) == {}
        status, _ = await chat.post(["not", "an", "event"], f"Bearer {token()}")
        assert status == 400
    assert (await agent.store.load(USER)).events == []


def test_the_turns_messages_as_one_chat_message() -> None:
    assert chat_message([]) == {}
    two = [{"recipient_id": "u", "text": "One."}, {"recipient_id": "u", "text": "Two."}]
    assert chat_message(two) == {"text": "One.\nTwo."}
    mixed = chat_message([{"text": "Look:"}, {"image": "https://x.example/a.png"}])
    assert mixed["cardsV2"][0]["card"]["sections"][0]["widgets"] == [
        {"textParagraph": {"text": "Look:"}},
        {"image": {"imageUrl": "https://x.example/a.png"}},
    ]
    custom = {"cardsV2": [{"cardId": "mine", "card": {"header": {"title": "Menu"}}}]}
    assert chat_message([{"custom": custom}]) == custom


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "hangouts: 'project_id' is required"),
        ({"project_id": ""}, "hangouts: 'project_id' must be a non-empty string"),
        ({"project_id": "1", "project": "2"}, "hangouts: unknown key(s) project"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HangoutsChannel.from_credentials(params)
    assert str(caught.value).startswith(error)


def test_added_to_a_direct_message_or_a_space_and_removed() -> None:
    from types import SimpleNamespace

    channel = HangoutsChannel(project_id=PROJECT)
    intents = {"user_added": None, "room_added": None, "bot_removed": None}
    channel._agent_getter = lambda: SimpleNamespace(domain=SimpleNamespace(intents=intents))
    room = {"name": "spaces/B", "type": "ROOM", "spaceType": "SPACE"}
    assert channel._incoming(event("ADDED_TO_SPACE")) == (USER, "/user_added")
    assert channel._incoming(event("ADDED_TO_SPACE", space=room)) == (USER, "/room_added")
    assert channel._incoming(event("REMOVED_FROM_SPACE")) == (USER, "/bot_removed")
    del intents["room_added"]
    assert channel._incoming(event("ADDED_TO_SPACE", space=room)) is None
