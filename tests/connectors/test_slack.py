"""The Slack channel against a fake Slack Web API on loopback, with signed Events API requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.server.settings import ServerSettings
from connectors.outbound import RetryPolicy
from connectors.slack import SlackChannel, sanitize
from connectors.slack_blocks import button_blocks, slack_posts
from tests.connectors import fake_slack
from tests.connectors.fake_slack import (
    BOT_USER,
    DM,
    SIGNING_SECRET,
    TOKEN,
    USER,
    FakeSlackApi,
    block_actions,
    event_body,
    event_callback,
    interaction_body,
    signed,
)
from tests.connectors.servers import ServeChannel, Served, serve
from tests.helpers import raw_request

PEOPLE_QUESTIONS = {"How many people are coming?", "For how many people should I book the table?"}
FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)


@dataclass
class Slack:
    """The bot's server with the Slack channel, the fake Web API it posts to, an HTTP client."""

    served: Served
    api: FakeSlackApi
    channel: SlackChannel
    http: aiohttp.ClientSession

    async def deliver(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        headers = headers if headers is not None else signed(body)
        async with self.http.post(
            f"{self.served.url}/webhooks/slack/webhook", data=body, headers=headers
        ) as response:
            await response.read()
            return response

    async def say(self, text: str, **event: Any) -> dict[str, Any]:
        envelope = event_callback(text, **event)
        response = await self.deliver(event_body(envelope))
        assert response.status == 200
        return envelope

    async def click(self, post: dict[str, Any], title: str) -> None:
        body = interaction_body(block_actions(post, title))
        response = await self.deliver(
            body, signed(body, content_type="application/x-www-form-urlencoded")
        )
        assert response.status == 200

    async def finish(self) -> None:
        """Let every accepted message be answered (the channel takes no more afterwards)."""
        await self.channel.workers.close(grace=10)


@pytest.fixture
def slack_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Slack]]:
    @asynccontextmanager
    async def start(
        settings: ServerSettings | None = None, **credentials: Any
    ) -> AsyncIterator[Slack]:
        api = FakeSlackApi()
        async with serve(api.app) as fake:
            params = {
                "slack_token": TOKEN,
                "slack_signing_secret": SIGNING_SECRET,
                "slack_api_url": f"{fake.url}/api",
                **credentials,
            }
            channel = SlackChannel.from_credentials(params)
            channel.api.policy = FAST_RETRIES
            async with (
                serve_channel(channel, settings) as served,
                aiohttp.ClientSession() as http,
            ):
                yield Slack(served, api, channel, http)

    return start


async def test_a_conversation_with_buttons_in_a_direct_message(slack_at: Any, agent: Agent) -> None:
    async with slack_at() as slack:
        await slack.say("/greet")
        (greeting,) = await slack.api.posts.wait_count(1)
        assert greeting["channel"] == DM and greeting["text"] and "thread_ts" not in greeting

        await slack.say("/request_restaurant")
        asked = (await slack.api.posts.wait_count(2))[1]
        assert asked["text"] == "What cuisine would you like?"
        assert asked["blocks"][0] == {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "What cuisine would you like?"},
        }
        buttons = asked["blocks"][1]["elements"]
        assert [b["text"]["text"] for b in buttons] == ["Italian", "Chinese", "Mexican", "Indian"]
        assert buttons[0]["value"] == '/inform{"cuisine": "italian"}'

        await slack.click(asked, "Italian")
        asked_people = (await slack.api.posts.wait_count(3))[2]["text"]
        assert asked_people in PEOPLE_QUESTIONS
        await slack.say('/inform{"number": 4}')
        outside = (await slack.api.posts.wait_count(4))[3]
        await slack.click(outside, "Yes")
        await slack.api.posts.wait_count(5)
        await slack.say("/deny")
        posts = await slack.api.posts.wait_count(8)
        assert posts[6]["blocks"] == [
            {
                "type": "image",
                "image_url": "https://picsum.photos/seed/terrace/400/300",
                "alt_text": "image",
            }
        ]
        await slack.finish()
    stored = await agent.store.load(USER)
    texts = [e["text"] for e in stored.events if e["event"] == "user"]
    assert texts == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 4}',
        "/affirm",
        "/deny",
    ]
    assert all(e["input_channel"] == "slack" for e in stored.events if e["event"] == "user")
    # Rasa's metadata: a list of users, the message's own ts as its thread (a click: the
    # clicker, the clicked message's ts).
    said, clicked = (
        e["metadata"] for e in stored.events if e["event"] == "user" and e["text"] in texts[:3:2]
    )
    assert said["users"] == [BOT_USER] and said["out_channel"] == DM
    assert isinstance(said["thread_id"], str) and said["thread_id"].startswith("1710000000.")
    assert clicked["users"] == [USER] and clicked["thread_id"].startswith("1700000000.")


async def test_url_verification_answers_the_challenge(slack_at: Any) -> None:
    async with slack_at() as slack:
        body = event_body(
            {
                "token": "t",
                "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                "type": "url_verification",
            }
        )
        async with slack.http.post(
            f"{slack.served.url}/webhooks/slack/webhook", data=body, headers=signed(body)
        ) as response:
            assert response.status == 200
            assert await response.json() == {
                "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
            }


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body: signed(body, secret="not the signing secret"), id="wrong-secret"),
        pytest.param(lambda body: signed(body, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda body: signed(body, timestamp=int(time.time()) + 301), id="future"),
        pytest.param(lambda body: signed(body + b" "), id="other-body"),
        pytest.param(
            lambda body: {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}, id="forged"
        ),
        pytest.param(lambda body: {"Content-Type": "application/json"}, id="unsigned"),
        pytest.param(
            lambda body: {**signed(body), "X-Slack-Request-Timestamp": "soon"}, id="bad-timestamp"
        ),
    ],
)
async def test_requests_not_signed_by_slack_are_refused_and_never_processed(
    slack_at: Any, agent: Agent, forge: Callable[[bytes], dict[str, str]]
) -> None:
    async with slack_at() as slack:
        body = event_body(event_callback("/greet"))
        response = await slack.deliver(body, forge(body))
        assert response.status == 401
        challenge = event_body({"type": "url_verification", "challenge": "c"})
        assert (await slack.deliver(challenge, forge(challenge))).status == 401
        await slack.say("/goodbye")
        await slack.api.posts.wait_count(1)
        await slack.finish()
        assert len(slack.api.attempts.items) == 1
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/goodbye"]


async def test_a_signature_header_that_is_not_utf8_is_refused(slack_at: Any, agent: Agent) -> None:
    async with slack_at() as slack:
        body = event_body(event_callback("/greet"))
        headers = {k: v.encode() for k, v in signed(body).items()}
        headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-2] + b"\xff"
        assert (
            await raw_request(slack.served.url, "POST", "/webhooks/slack/webhook", headers, body)
            == 401
        )
        await slack.finish()
    assert (await agent.store.load(USER)).events == []


async def test_retries_and_the_double_delivery_of_a_mention_are_answered_once(
    slack_at: Any, agent: Agent
) -> None:
    async with slack_at(slack_channel="C0GENERAL") as slack:
        envelope = event_callback("/greet")
        body = event_body(envelope)
        for number, reason in [("", ""), ("1", "http_error"), ("2", "http_error")]:
            headers = signed(body)
            if number:
                headers.update({"X-Slack-Retry-Num": number, "X-Slack-Retry-Reason": reason})
            assert (await slack.deliver(body, headers)).status == 200
        timed_out = {
            **signed(body),
            "X-Slack-Retry-Num": "3",
            "X-Slack-Retry-Reason": "http_timeout",
        }
        response = await slack.deliver(body, timed_out)
        assert response.headers["X-Slack-No-Retry"] == "1"

        # A mention in a channel the bot reads comes twice: as a message and as an app_mention.
        mention = f"<@{BOT_USER}> /goodbye"
        ts = fake_slack.next_ts()
        await slack.say(mention, channel="C0GENERAL", ts=ts)
        await slack.say(mention, channel="C0GENERAL", ts=ts, kind="app_mention")
        await slack.finish()
        assert len(slack.api.posts.items) == 2
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet", "/goodbye"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"bot_id": "B0OTHER", "subtype": "bot_message"}, id="another-bot"),
        pytest.param({"user": BOT_USER}, id="the-bot-itself"),
        pytest.param({"subtype": "message_changed"}, id="an-edit"),
        pytest.param({"subtype": "channel_join"}, id="a-join"),
        pytest.param({"channel": "C0ELSEWHERE"}, id="a-channel-not-read"),
        pytest.param({"text": f"<@{BOT_USER}>"}, id="only-a-mention"),
    ],
)
async def test_messages_not_for_the_bot_are_ignored(
    slack_at: Any, agent: Agent, event: dict[str, Any]
) -> None:
    async with slack_at() as slack:
        await slack.say(event.pop("text", "/greet"), **event)
        await slack.say("/goodbye")
        await slack.finish()
        assert len(slack.api.posts.items) == 1
    assert await agent.store.conversation_ids() == [USER]


async def test_twenty_messages_at_once_are_answered_in_order(slack_at: Any, agent: Agent) -> None:
    async with slack_at(use_threads=True) as slack:
        slack.api.hold = asyncio.Event()  # no answer gets out before all twenty are acknowledged
        sent = [await slack.say(f'/greet{{"number": {i}}}') for i in range(20)]
        slack.api.hold.set()
        posts = await slack.api.posts.wait_count(20)
        await slack.finish()
    assert [p["thread_ts"] for p in posts] == [e["event"]["ts"] for e in sent]
    stored = await agent.store.load(USER)
    users = [e["text"] for e in stored.events if e["event"] == "user"]
    assert users == [f'/greet{{"number": {i}}}' for i in range(20)]


async def test_answers_go_to_the_thread_of_a_threaded_message(slack_at: Any) -> None:
    async with slack_at(conversation_granularity="thread") as slack:
        await slack.say("/greet", thread_ts="1700000000.000100")
        (post,) = await slack.api.posts.wait_count(1)
        assert post["thread_ts"] == "1700000000.000100"


async def test_429_is_retried_after_retry_after(slack_at: Any, agent: Agent) -> None:
    async with slack_at() as slack:
        slack.api.answers = [(429, {"Retry-After": "1"}), (500, {})]
        await slack.say("/greet")
        await slack.api.posts.wait_count(1)
        attempts = slack.api.attempts.items
        assert len(attempts) == 3
        assert attempts[1]["at"] - attempts[0]["at"] >= 0.9  # Retry-After: 1 was honoured


async def test_an_api_that_keeps_failing_is_given_up_on_with_a_log_line(
    slack_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with slack_at() as slack:
        slack.api.fail_always = 500
        await slack.say("/greet")
        await slack.api.attempts.wait_count(FAST_RETRIES.attempts)
        slack.api.fail_always = None
        await slack.say("/goodbye")  # the server is still up and answers the next message
        await slack.api.posts.wait_count(1)
        await slack.finish()
        assert len(slack.api.attempts.items) == FAST_RETRIES.attempts + 1
    gave_up = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert len(gave_up) == 1 and "chat.postMessage" in gave_up[0].getMessage()


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"slack_signing_secret": "s"}, "slack_token"),
        ({"slack_token": "xoxb-1"}, "slack_signing_secret"),
        ({"slack_token": "x", "slack_signing_secret": "s", "use_threads": "yes"}, "use_threads"),
        (
            {"slack_token": "x", "slack_signing_secret": "s", "conversation_granularity": "team"},
            "conversation_granularity",
        ),
        (
            {
                "slack_token": "x",
                "slack_signing_secret": "s",
                "errors_ignore_retry": "http_timeout",
            },
            "errors_ignore_retry",
        ),
        ({"slack_token": "x", "slack_signing_secret": "s", "slack_chanel": "C1"}, "slack_chanel"),
        ({"slack_token": 12, "slack_signing_secret": "s"}, "'slack_token' must be a string"),
    ],
)
def test_bad_credentials_name_the_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SlackChannel.from_credentials(params)


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (f"<@{BOT_USER}> hello", "hello"),
        (f"hi <@{BOT_USER}>, how are you", "hi , how are you"),
        ("see <https://example.com|example.com>", "see example.com"),
        ("mail <mailto:a@b.example|a@b.example>", "mail a@b.example"),
        ("go to <https://example.com>", "go to https://example.com"),
        ("fish &amp; chips &lt;3", "fish & chips <3"),
    ],
)
def test_slack_markup_is_taken_out_of_user_text(text: str, clean: str) -> None:
    assert sanitize(text, BOT_USER) == clean


def test_bot_messages_as_chat_post_message_bodies() -> None:
    many = [{"title": f"B{i}", "payload": f"/b{i}"} for i in range(30)]
    blocks = button_blocks("x" * 3500, many)
    assert [b["type"] for b in blocks] == ["section", "section", "actions", "actions"]
    assert [len(b["elements"]) for b in blocks[2:]] == [25, 5]
    assert slack_posts({"custom": {"text": "hi", "channel": "C9"}}, "D1") == [
        {"channel": "C9", "text": "hi"}
    ]
    assert slack_posts({"attachment": {"fallback": "f"}}, "D1") == [
        {"channel": "D1", "text": "", "attachments": [{"fallback": "f"}]}
    ]
    # As Rasa's: a text is posted a paragraph at a time (one with buttons stays whole).
    assert slack_posts({"text": "One.\n\nTwo.\n"}, "D1") == [
        {"channel": "D1", "text": "One.", "mrkdwn": True},
        {"channel": "D1", "text": "Two.", "mrkdwn": True},
    ]


async def test_shutdown_cancels_an_answer_that_outlives_the_grace(
    slack_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with slack_at() as slack:
        slack.channel.workers.grace = 0.1
        slack.api.hold = asyncio.Event()  # Slack never answers
        await slack.say("/greet")
        await slack.api.attempts.wait_count(1)
    assert slack.channel.workers.busy == 0
    assert "slack: cancelling 1 unfinished conversation(s)" in caplog.text


async def test_an_external_event_answers_in_the_thread_the_user_wrote_in(slack_at: Any) -> None:
    """``trigger_intent?output_channel=latest`` (reminders go the same way): posted to the
    channel and thread of the conversation's latest message, not returned."""
    settings = ServerSettings(enable_api=True, rate_limit=None)
    async with slack_at(settings, conversation_granularity="thread") as slack:
        await slack.say("/greet", thread_ts="1700000000.000100")
        await slack.api.posts.wait_count(1)
        conversation = f"{USER}_{DM}_1700000000.000100"
        url = f"{slack.served.url}/conversations/{conversation}/trigger_intent"
        async with slack.http.post(
            f"{url}?output_channel=latest", json={"name": "bot_challenge"}
        ) as response:
            assert response.status == 200
            assert "messages" not in await response.json()
        post = (await slack.api.posts.wait_count(2))[1]
    assert (post["channel"], post["thread_ts"]) == (DM, "1700000000.000100")
    assert post["text"].startswith("I am a bot")
