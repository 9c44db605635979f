"""The Telegram channel against a fake Bot API on loopback, with updates as Telegram posts them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError, StoreUnavailable
from chatbot.server.errors import APOLOGY
from chatbot.server.settings import ServerSettings
from chatbot.store.base import StoredConversation
from chatbot.store.memory import InMemoryStore
from connectors.outbound import RetryPolicy
from connectors.telegram import TelegramChannel
from connectors.telegram_messages import PayloadBook, inline_keyboard, split_text, telegram_calls
from tests.connectors.fake_telegram import (
    CHAT,
    SECRET,
    TOKEN,
    FakeTelegramApi,
    callback_update,
    message_update,
    wait_calls,
)
from tests.connectors.servers import ServeChannel, Served, app_with, serve
from tests.helpers import raw_request

FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)
# Intents whose answers tell which one was answered (rules answer them at any point).
ANSWERS = {
    "/greet": ("Hello!", "Hi there!"),
    "/goodbye": ("Goodbye", "Bye!"),
    "/bot_challenge": ("I am a bot",),
    "/thankyou": ("You're welcome", "No worries"),
}


@dataclass
class Telegram:
    served: Served
    api: FakeTelegramApi
    channel: TelegramChannel
    http: aiohttp.ClientSession

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        url = f"{self.served.url}/webhooks/telegram/webhook"
        async with self.http.post(url, json=update, headers=headers) as response:
            await response.read()
            return response.status

    async def say(self, text: str, **kwargs: Any) -> None:
        assert await self.post(message_update(text, **kwargs)) == 200

    async def click(self, sent: dict[str, Any], title: str) -> None:
        assert await self.post(callback_update(sent, title)) == 200

    async def finish(self) -> None:
        await self.channel.workers.close(grace=10)


@pytest.fixture
def telegram_at(
    serve_channel: ServeChannel,
) -> Callable[..., AbstractAsyncContextManager[Telegram]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Telegram]:
        api = FakeTelegramApi()
        async with serve(api.app) as fake:
            params = {"access_token": TOKEN, "secret_token": SECRET, "api_url": fake.url}
            channel = TelegramChannel.from_credentials({**params, **credentials})
            channel.api.policy = FAST_RETRIES
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Telegram(served, api, channel, http)

    return start


async def test_a_conversation_with_buttons(telegram_at: Any, agent: Agent) -> None:
    async with telegram_at() as telegram:
        await telegram.say("/greet")
        (greeting,) = await wait_calls(telegram.api, "sendMessage", 1)
        assert greeting["params"]["chat_id"] == CHAT and greeting["params"]["text"]

        await telegram.say("/request_restaurant")
        asked = (await wait_calls(telegram.api, "sendMessage", 2))[1]
        assert asked["params"] == {
            "chat_id": CHAT,
            "text": "What cuisine would you like?",
            "reply_markup": {
                "inline_keyboard": [
                    [
                        {"text": "Italian", "callback_data": '/inform{"cuisine": "italian"}'},
                        {"text": "Chinese", "callback_data": '/inform{"cuisine": "chinese"}'},
                        {"text": "Mexican", "callback_data": '/inform{"cuisine": "mexican"}'},
                        {"text": "Indian", "callback_data": '/inform{"cuisine": "indian"}'},
                    ]
                ]
            },
        }
        await telegram.click(asked, "Italian")
        (answered,) = await wait_calls(telegram.api, "answerCallbackQuery", 1)
        assert answered["params"]["callback_query_id"].endswith("4382bfdwdsb323b2d9")
        await wait_calls(telegram.api, "sendMessage", 3)
        await telegram.say('/inform{"number": 3}')
        outside = (await wait_calls(telegram.api, "sendMessage", 4))[3]
        await telegram.click(outside, "Yes")
        await wait_calls(telegram.api, "sendMessage", 5)
        await telegram.say("/deny")
        (photo,) = await wait_calls(telegram.api, "sendPhoto", 1)
        assert photo["params"] == {
            "chat_id": CHAT,
            "photo": "https://picsum.photos/seed/terrace/400/300",
        }
        await telegram.finish()
    stored = await agent.store.load(str(CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 3}',
        "/affirm",
        "/deny",
    ]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x"])
async def test_updates_without_the_secret_token_are_refused_and_never_processed(
    telegram_at: Any, agent: Agent, secret: str | None
) -> None:
    async with telegram_at() as telegram:
        assert await telegram.post(message_update("/greet"), secret=secret) == 403
        await telegram.say("/goodbye")
        await telegram.finish()
        assert len(telegram.api.calls.items) == 1
    stored = await agent.store.load(str(CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/goodbye"]


async def test_a_secret_token_header_that_is_not_utf8_is_refused(
    telegram_at: Any, agent: Agent
) -> None:
    async with telegram_at() as telegram:
        body = json.dumps(message_update("/greet")).encode()
        for secret in (b"\xff", SECRET.encode() + b"\xed\xa0\x80"):
            headers = {
                "Content-Type": b"application/json",
                "X-Telegram-Bot-Api-Secret-Token": secret,
            }
            path = "/webhooks/telegram/webhook"
            status = await raw_request(telegram.served.url, "POST", path, headers, body)
            assert status == 403
        await telegram.finish()
    assert (await agent.store.load(str(CHAT))).events == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # too deep
        b'{"update_id": NaN}',  # Python's json reads it; JSON has no NaN
    ],
)
async def test_a_body_that_is_not_json_is_a_400(
    telegram_at: Any, agent: Agent, body: bytes
) -> None:
    async with telegram_at() as telegram:
        url = f"{telegram.served.url}/webhooks/telegram/webhook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
        async with telegram.http.post(url, data=body, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "the body is not JSON"
        await telegram.finish()
    assert (await agent.store.load(str(CHAT))).events == []


async def test_a_re_sent_update_is_answered_once(telegram_at: Any, agent: Agent) -> None:
    async with telegram_at() as telegram:
        update = message_update("/greet")
        for _ in range(3):
            assert await telegram.post(update) == 200
        await telegram.finish()
        assert len(telegram.api.sent()) == 1
    stored = await agent.store.load(str(CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet"]


async def test_twenty_messages_at_once_are_answered_in_order(
    telegram_at: Any, agent: Agent
) -> None:
    said = [list(ANSWERS)[i % 3 if i % 5 else 3] for i in range(20)]
    async with telegram_at() as telegram:
        telegram.api.hold = asyncio.Event()  # no answer gets out before all twenty are taken
        for text in said:
            await telegram.say(text)
        telegram.api.hold.set()
        sent = await wait_calls(telegram.api, "sendMessage", 20)
    answers = [call["params"]["text"] for call in sent]
    for text, answer in zip(said, answers, strict=True):
        assert answer.startswith(ANSWERS[text]), (text, answer)
    stored = await agent.store.load(str(CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == said


async def test_the_webhook_is_set_at_startup_with_a_secret_of_the_servers_own(
    telegram_at: Any,
) -> None:
    url = "https://bot.example.com/webhooks/telegram/webhook"
    async with telegram_at(secret_token=None, webhook_url=url) as telegram:
        (call,) = await wait_calls(telegram.api, "setWebhook", 1)
        secret = call["params"]["secret_token"]
        assert call["params"]["url"] == url and secret == telegram.channel.secret_token
        assert call["params"]["allowed_updates"] == ["message", "edited_message", "callback_query"]
        assert await telegram.post(message_update("/greet"), secret=SECRET) == 403
        assert await telegram.post(message_update("/greet"), secret=secret) == 200
        await wait_calls(telegram.api, "sendMessage", 1)


async def test_a_command_to_the_bot_in_a_group_loses_the_bots_name(
    telegram_at: Any, agent: Agent
) -> None:
    async with telegram_at(verify="restaurant_bot") as telegram:
        await telegram.say("/greet@restaurant_bot", chat=-100123)
        await wait_calls(telegram.api, "sendMessage", 1)
    stored = await agent.store.load("-100123")
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet"]


async def test_a_location_and_a_restart_are_read_as_rasas_channel_reads_them(
    telegram_at: Any, agent: Agent
) -> None:
    """A shared location is the text {"lng":..., "lat":...}; /restart is followed by /start."""
    async with telegram_at() as telegram:
        located = message_update("", chat=4242)
        del located["message"]["text"]
        located["message"]["location"] = {"longitude": 13.4, "latitude": 52.52}
        assert await telegram.post(located) == 200
        await telegram.say("/restart", chat=4242)
        await telegram.finish()  # the chat's answers, the /start after the /restart included
    stored = await agent.store.load("4242", all_sessions=True)
    texts = [e["text"] for e in stored.events if e["event"] == "user"]
    assert texts == ['{"lng":13.4, "lat":52.52}', "/restart", "/start"]


async def test_a_long_payload_rides_in_callback_data_as_a_digest(
    telegram_at: Any, agent: Agent
) -> None:
    long_payload = '/inform{"cuisine": "' + "italian" * 10 + '"}'
    book = PayloadBook()
    keyboard = inline_keyboard([{"title": "Long", "payload": long_payload}], book)
    data = keyboard["inline_keyboard"][0][0]["callback_data"]
    assert len(data.encode()) <= 64 and book.payload(data) == long_payload
    async with telegram_at() as telegram:
        telegram.channel.payloads = book
        sent = {"result": {"chat": {"id": CHAT}, "reply_markup": keyboard}}
        await telegram.click(sent, "Long")
        await wait_calls(telegram.api, "answerCallbackQuery", 1)
        telegram.channel.payloads = PayloadBook()  # as after a restart: the title stands in
        await telegram.click(sent, "Long")
        await wait_calls(telegram.api, "answerCallbackQuery", 2)
        await telegram.finish()
    stored = await agent.store.load(str(CHAT))
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [long_payload, "Long"]


async def test_429_is_retried_after_the_wait_telegram_asks(telegram_at: Any) -> None:
    async with telegram_at() as telegram:
        too_many = {
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
        telegram.api.answers = [(429, too_many), (502, {"description": "Bad Gateway"})]
        await telegram.say("/greet")
        await wait_calls(telegram.api, "sendMessage", 1)
        attempts = telegram.api.attempts.items
        assert len(attempts) == 3
        assert attempts[1]["at"] - attempts[0]["at"] >= 0.9


async def test_an_api_that_keeps_failing_is_given_up_on_with_a_log_line(
    telegram_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with telegram_at() as telegram:
        telegram.api.fail_always = 500
        await telegram.say("/greet")
        await telegram.api.attempts.wait_count(FAST_RETRIES.attempts)
        telegram.api.fail_always = None
        await telegram.say("/goodbye")
        await wait_calls(telegram.api, "sendMessage", 1)
        await telegram.finish()
    gave_up = [r.getMessage() for r in caplog.records if "giving up" in r.getMessage()]
    assert len(gave_up) == 1 and "sendMessage" in gave_up[0]
    assert TOKEN not in caplog.text  # the token is in the URL; no log line may show it


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"secret_token": SECRET}, "access_token"),
        ({"access_token": TOKEN}, "secret_token"),
        ({"access_token": TOKEN, "secret_token": "has spaces"}, "secret_token"),
        ({"access_token": TOKEN, "secret_token": SECRET, "set_webhook": "no"}, "set_webhook"),
        ({"access_token": TOKEN, "secret_token": SECRET, "webhook": "x"}, "webhook"),
        ({"access_token": TOKEN, "webhook_url": "https://x", "set_webhook": False}, "secret_token"),
        ({"access_token": 5, "secret_token": SECRET}, "'access_token' must be a non-empty string"),
        ({"access_token": TOKEN, "secret_token": SECRET, "webhook_url": 7}, "'webhook_url' must"),
        ({"access_token": TOKEN, "secret_token": SECRET, "verify": ["x"]}, "'verify' must"),
    ],
)
def test_bad_credentials_name_the_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        TelegramChannel.from_credentials(params)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("short", ["short"]),
        ("a" * 4096, ["a" * 4096]),
        ("a" * 4097, ["a" * 4096, "a"]),
        ("word " * 1000, ["word " * 818 + "word", "word " * 181]),
        ("line\n" * 1000, ["line\n" * 818 + "line", "line\n" * 181]),
        ("x" * 3000 + " " + "y" * 3000, ["x" * 3000, "y" * 3000]),
        ("x" * 1000 + " " + "y" * 5000, ["x" * 1000 + " " + "y" * 3095, "y" * 1905]),
        ("😀" * 2049, ["😀" * 2048, "😀"]),  # 2 UTF-16 units each
    ],
)
def test_long_texts_are_split_at_4096_characters(text: str, pieces: list[str]) -> None:
    assert split_text(text) == pieces
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in split_text(text))


def test_buttons_go_with_the_last_piece_and_custom_payloads_pick_their_method() -> None:
    book = PayloadBook()
    chat = {"chat_id": 1}
    calls = telegram_calls(
        {"text": "x" * 5000, "buttons": [{"title": "A", "payload": "/a"}]}, chat, book
    )
    assert [("reply_markup" in params) for _, params in calls] == [False, True]
    assert telegram_calls({"custom": {"latitude": 1.0, "longitude": 2.0}}, chat, book) == [
        ("sendLocation", {"chat_id": 1, "latitude": 1.0, "longitude": 2.0})
    ]
    assert telegram_calls({"custom": {"type": "booking"}}, chat, book) == []
    many = inline_keyboard([{"title": f"Option {i}", "payload": f"/o{i}"} for i in range(5)], book)
    assert [len(row) for row in many["inline_keyboard"]] == [1, 1, 1, 1, 1]
    # As Rasa's: a text is sent a paragraph at a time; one with buttons stays whole.
    text = "First part.\n\nSecond part.\n\n"
    assert [p["text"] for _, p in telegram_calls({"text": text}, chat, book)] == [
        "First part.",
        "Second part.",
    ]
    with_buttons = telegram_calls({"text": text, "buttons": [{"title": "A"}]}, chat, book)
    assert [p["text"] for _, p in with_buttons] == [text]


class StoreDown(InMemoryStore):
    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        raise StoreUnavailable("the database is gone")


async def test_the_user_is_told_sorry_when_the_store_is_down(
    restaurant_model: TrainedModel,
) -> None:
    agent = Agent(restaurant_model, store=StoreDown())
    api = FakeTelegramApi()
    async with serve(api.app) as fake:
        channel = TelegramChannel.from_credentials(
            {"access_token": TOKEN, "secret_token": SECRET, "api_url": fake.url}
        )
        async with serve(app_with(agent, channel)) as served, aiohttp.ClientSession() as http:
            telegram = Telegram(served, api, channel, http)
            await telegram.say("/greet")
            (sent,) = await wait_calls(api, "sendMessage", 1)
    assert sent["params"] == {"chat_id": CHAT, "text": APOLOGY}


async def test_an_external_event_answers_in_the_telegram_chat(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    """``trigger_intent?output_channel=latest`` (Rasa's external events; reminders go the same
    way): the bot's answer is sent to the chat the conversation is, not returned."""
    api = FakeTelegramApi()
    async with serve(api.app) as fake:
        params = {"access_token": TOKEN, "secret_token": SECRET, "api_url": fake.url}
        channel = TelegramChannel.from_credentials(params)
        channel.api.policy = FAST_RETRIES
        settings = ServerSettings(enable_api=True, rate_limit=None)
        async with serve_channel(channel, settings) as served, aiohttp.ClientSession() as http:
            telegram = Telegram(served, api, channel, http)
            await telegram.say("/greet")
            await wait_calls(api, "sendMessage", 1)
            url = f"{served.url}/conversations/{CHAT}/trigger_intent?output_channel=latest"
            async with http.post(url, json={"name": "bot_challenge"}) as response:
                assert response.status == 200
                assert "messages" not in await response.json()
            sent = (await wait_calls(api, "sendMessage", 2))[1]
            await telegram.finish()
    assert sent["params"]["chat_id"] == CHAT
    assert sent["params"]["text"].startswith("I am a bot")


def test_a_button_payload_with_a_lone_surrogate_still_gets_callback_data() -> None:
    # A slot value filled into a payload template may hold one (from a socket.io client).
    book = PayloadBook()
    for payload in ('/inform{"name": "\ud800"}', '/inform{"name": "' + "\udc00" * 40 + '"}'):
        keyboard = inline_keyboard([{"title": "A", "payload": payload}], book)
        data = keyboard["inline_keyboard"][0][0]["callback_data"]
        assert data == payload or book.payload(data) == payload
