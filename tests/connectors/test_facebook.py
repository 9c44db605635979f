"""The Facebook Messenger channel against a fake Send API on loopback, with deliveries signed as
Messenger signs them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.server.keys import OUTPUTS
from connectors.facebook import FacebookChannel
from connectors.facebook_messages import MAX_TEXT, facebook_messages
from connectors.outbound import RetryPolicy
from connectors.text_parts import split_text
from tests.connectors.fake_facebook import (
    APP_SECRET,
    PAGE_TOKEN,
    PSID,
    VERIFY,
    FakeSendApi,
    delivery,
    encode,
    event,
    postback_event,
    quick_reply_event,
    signed,
    text_event,
    wait_messages,
)
from tests.connectors.servers import ServeChannel, Served, serve

FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)
CREDENTIALS = {"verify": VERIFY, "secret": APP_SECRET, "page-access-token": PAGE_TOKEN}
GREETINGS = ("Hello!", "Hi there!")


@dataclass
class Messenger:
    served: Served
    api: FakeSendApi
    channel: FacebookChannel
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.served.url}/webhooks/facebook/webhook"

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        headers = {"Content-Type": "application/json", **headers}
        async with self.http.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def deliver(self, *events: dict[str, Any]) -> None:
        body = encode(delivery(*events))
        assert await self.post(body, signed(body)) == 200

    async def say(self, text: str, **kwargs: Any) -> None:
        await self.deliver(text_event(text, **kwargs))

    async def finish(self) -> None:
        await self.channel.workers.close(grace=10)


@pytest.fixture
def messenger_at(
    serve_channel: ServeChannel,
) -> Callable[..., AbstractAsyncContextManager[Messenger]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Messenger]:
        api = FakeSendApi()
        async with serve(api.app) as fake:
            channel = FacebookChannel.from_credentials(
                {**CREDENTIALS, "api_url": fake.url, **credentials}
            )
            channel.api.policy = FAST_RETRIES
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Messenger(served, api, channel, http)

    return start


async def user_texts(agent: Agent, sender: str = PSID) -> list[str]:
    stored = await agent.store.load(sender)
    return [e["text"] for e in stored.events if e["event"] == "user"]


async def test_a_conversation_with_quick_replies_buttons_and_an_image(
    messenger_at: Any, agent: Agent
) -> None:
    async with messenger_at() as messenger:
        await messenger.say("/greet")
        (greeting,) = await wait_messages(messenger.api, 1)
        call = messenger.api.calls.items[0]["payload"]
        assert call["recipient"] == {"id": PSID} and call["messaging_type"] == "RESPONSE"
        assert greeting["text"].startswith(GREETINGS)

        # Four buttons: more than a button template holds, so quick replies (Rasa dropped them).
        await messenger.say("/request_restaurant")
        asked = (await wait_messages(messenger.api, 2))[1]
        assert asked == {
            "text": "What cuisine would you like?",
            "quick_replies": [
                {"content_type": "text", "title": title, "payload": f'/inform{{"cuisine": "{c}"}}'}
                for title, c in (
                    ("Italian", "italian"),
                    ("Chinese", "chinese"),
                    ("Mexican", "mexican"),
                    ("Indian", "indian"),
                )
            ],
        }
        await messenger.deliver(quick_reply_event("Italian", '/inform{"cuisine": "italian"}'))
        await wait_messages(messenger.api, 3)
        await messenger.say('/inform{"number": 3}')
        outside = (await wait_messages(messenger.api, 4))[3]
        assert outside == {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "Would you like to sit outside?",
                    "buttons": [
                        {"type": "postback", "title": "Yes", "payload": "/affirm"},
                        {"type": "postback", "title": "No", "payload": "/deny"},
                    ],
                },
            }
        }
        await messenger.deliver(postback_event("Yes", "/affirm"))
        await wait_messages(messenger.api, 5)
        await messenger.say("/deny")  # no other preferences: the booking is done
        sent = await wait_messages(messenger.api, 7)
        assert sent[5]["text"].startswith("All done! I've asked for a table outside.")
        assert sent[6] == {
            "attachment": {
                "type": "image",
                "payload": {
                    "url": "https://picsum.photos/seed/terrace/400/300",
                    "is_reusable": True,
                },
            }
        }
        await messenger.finish()
    assert await user_texts(agent) == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 3}',
        "/affirm",
        "/deny",
    ]


async def test_the_webhook_check_answers_the_challenge_for_the_verify_token_only(
    messenger_at: Any,
) -> None:
    async with messenger_at() as messenger:
        for query, status, text in (
            ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
             200, "1158201444"),
            ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
             403, None),
            ({"hub.verify_token": VERIFY, "hub.challenge": "1"}, 403, None),
            ({}, 403, None),
        ):  # fmt: skip
            async with messenger.http.get(messenger.url, params=query) as response:
                assert response.status == status, query
                if text is not None:
                    assert await response.text() == text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed(b"another body"),
        signed(encode(delivery(text_event("/greet", mid="m_fixed"))), "another secret"),
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "not a signature"},
        {"X-Hub-Signature": "sha1=" + "0" * 40},
    ],
)
async def test_deliveries_without_a_valid_signature_are_refused_and_never_processed(
    messenger_at: Any, agent: Agent, headers: dict[str, str]
) -> None:
    async with messenger_at() as messenger:
        body = encode(delivery(text_event("/greet", mid="m_fixed")))
        assert await messenger.post(body, headers) == 403
        await messenger.say("/goodbye")
        await wait_messages(messenger.api, 1)
        await messenger.finish()
    assert await user_texts(agent) == ["/goodbye"]


async def test_the_older_sha1_signature_is_accepted(messenger_at: Any, agent: Agent) -> None:
    async with messenger_at() as messenger:
        body = encode(delivery(text_event("/greet")))
        assert await messenger.post(body, signed(body, sha1=True)) == 200
        await wait_messages(messenger.api, 1)
    assert await user_texts(agent) == ["/greet"]


async def test_a_re_sent_message_is_answered_once(messenger_at: Any, agent: Agent) -> None:
    async with messenger_at() as messenger:
        resent = text_event("/greet", mid="m_resent")
        for _ in range(3):
            await messenger.deliver(resent)
        await messenger.finish()
        assert len(messenger.api.calls.items) == 1
    assert await user_texts(agent) == ["/greet"]


async def test_every_event_of_a_delivery_is_answered_in_order(
    messenger_at: Any, agent: Agent
) -> None:
    """Rasa answered the first event of a delivery; Messenger batches several."""
    other = "9000000000000001"
    async with messenger_at() as messenger:
        await messenger.deliver(
            text_event("/greet"),
            text_event("/greet", sender=other),
            text_event("/goodbye"),
            text_event("/bot_challenge"),
        )
        await wait_messages(messenger.api, 4)
    assert await user_texts(agent) == ["/greet", "/goodbye", "/bot_challenge"]
    assert await user_texts(agent, other) == ["/greet"]


async def test_echoes_receipts_and_malformed_events_are_ignored(
    messenger_at: Any, agent: Agent
) -> None:
    async with messenger_at() as messenger:
        ignored = [
            event("message", {"mid": "m_echo", "text": "/greet", "is_echo": True}),
            event("delivery", {"mids": ["m_1"], "watermark": 1}),
            event("read", {"watermark": 1}),
            event("message", {"mid": "m_sticker", "attachments": [{"type": "image"}]}),
            event("message", {"mid": "m_blank", "text": "   "}),
            event("message", {"mid": "m_odd", "text": ["not", "text"]}),
            {"recipient": {"id": "1"}, "message": {"mid": "m_nobody", "text": "/greet"}},
            text_event("/greet", sender="\x00"),
            "not an event",
        ]
        await messenger.deliver(*ignored)  # type: ignore[arg-type]
        body = encode({"object": "page", "entry": ["odd", {"messaging": "odd"}]})
        assert await messenger.post(body, signed(body)) == 200
        for bad in (b"not json", b"[]", b'{"object": "page"}'):
            assert await messenger.post(bad, signed(bad)) == 400
        await messenger.finish()
        assert messenger.api.calls.items == []
    assert (await agent.store.load(PSID)).events == []


async def test_a_voice_message_is_its_url_as_in_rasa(messenger_at: Any, agent: Agent) -> None:
    url = "https://cdn.fbsbx.com/v/audioclip-1.mp4"
    voice = {"mid": "m_voice", "attachments": [{"type": "audio", "payload": {"url": url}}]}
    async with messenger_at() as messenger:
        await messenger.deliver(event("message", voice))
        await wait_messages(messenger.api, 1)
    assert await user_texts(agent) == [url]


async def test_send_failures_are_retried_and_refusals_logged(
    messenger_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with messenger_at() as messenger:
        messenger.api.answers = [(500, {"error": {"message": "An unknown error occurred"}})]
        await messenger.say("/greet")
        await wait_messages(messenger.api, 1)
        assert len(messenger.api.attempts.items) == 2
        outside_window = {
            "message": "(#10) This message is sent outside of allowed window.",
            "type": "OAuthException",
            "code": 10,
        }
        messenger.api.answers = [(400, {"error": outside_window})]
        await messenger.say("/goodbye")
        await messenger.api.attempts.wait_count(3)
        await messenger.finish()
        assert len(messenger.api.attempts.items) == 3  # a refusal is not retried
    assert "facebook me/messages: HTTP 500; retry 1 of 2" in caplog.text
    assert "facebook send: refused ((#10) This message is sent outside of allowed window.)" in (
        caplog.text
    )
    assert PAGE_TOKEN not in caplog.text


async def test_a_wrong_page_token_is_logged_without_the_token(
    messenger_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="connectors")
    async with messenger_at(**{"page-access-token": "EAAwrongtoken"}) as messenger:
        await messenger.say("/greet")
        await messenger.api.attempts.wait_count(1)
        await messenger.finish()
    assert "refused (Invalid OAuth access token.)" in caplog.text
    assert "EAAwrongtoken" not in caplog.text


async def test_a_reminder_is_sent_to_the_user(messenger_at: Any) -> None:
    async with messenger_at() as messenger:
        send = messenger.served.app[OUTPUTS]["facebook"]
        await send(PSID, [{"recipient_id": PSID, "text": "Time for your booking!"}], {})
        (message,) = await wait_messages(messenger.api, 1)
        assert message == {"text": "Time for your booking!"}
        assert messenger.api.calls.items[0]["payload"]["recipient"] == {"id": PSID}


def test_bot_messages_as_send_api_messages() -> None:
    long = "word " * 900  # 4,500 characters
    parts = [m["text"] for _, m in facebook_messages({"text": long.strip()})]
    assert len(parts) == 3 and all(len(p) <= MAX_TEXT for p in parts)
    assert " ".join(parts).split() == long.split()
    assert split_text("First.\n\nSecond.", MAX_TEXT) == ["First.", "Second."]

    buttons = [
        {"title": f"Option number {i} is long", "payload": f"/pick{{{i}}}"} for i in range(15)
    ]
    (_, replies), = facebook_messages({"text": "Pick one", "buttons": buttons})  # fmt: skip
    assert len(replies["quick_replies"]) == 13
    assert replies["quick_replies"][0] == {
        "content_type": "text",
        "title": "Option number 0 is l",  # 20 characters at most
        "payload": "/pick{0}",
    }
    url_button = {"type": "web_url", "title": "Menu", "url": "https://example.com/menu"}
    (_, template), = facebook_messages({"text": "See", "buttons": [url_button]})  # fmt: skip
    assert template["attachment"]["payload"]["buttons"] == [url_button]

    custom = {"sender": {"id": "123"}, "attachment": {"type": "template", "payload": {}}}
    assert facebook_messages({"custom": custom}) == [
        ("123", {"attachment": {"type": "template", "payload": {}}})
    ]
    assert custom["sender"] == {"id": "123"}  # the response itself is left as it was
    element = {"title": "Pizza", "buttons": [{"title": "Order", "payload": "/order"}]}
    (_, generic), = facebook_messages({"elements": [element]})  # fmt: skip
    assert generic["attachment"]["payload"] == {
        "template_type": "generic",
        "elements": [
            {
                "title": "Pizza",
                "buttons": [{"title": "Order", "payload": "/order", "type": "postback"}],
            }
        ],
    }
    assert facebook_messages({"attachment": "https://x.example/a.pdf"}) == [
        (None, {"text": "Attachment: https://x.example/a.pdf"})
    ]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"verify": "v", "secret": "s"}, "facebook: 'page-access-token' is required"),
        ({**CREDENTIALS, "secret": ""}, "facebook: 'secret' must be a non-empty string, not ''"),
        ({**CREDENTIALS, "verify": 12}, "facebook: 'verify' must be a non-empty string, not 12"),
        ({**CREDENTIALS, "page_access_token": "t"}, "facebook: unknown key(s) page_access_token"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FacebookChannel.from_credentials(params)
    assert str(caught.value).startswith(error)


async def test_twenty_messages_at_once_are_answered_in_order(
    messenger_at: Any, agent: Agent
) -> None:
    said = ["/greet", "/goodbye", "/bot_challenge", "/thankyou"] * 5
    async with messenger_at() as messenger:
        for text in said:
            await messenger.say(text)
        await wait_messages(messenger.api, 20)
    assert await user_texts(agent) == said
