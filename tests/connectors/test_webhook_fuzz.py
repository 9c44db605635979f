"""Random updates, rightly authenticated, thrown at the webhooks of Telegram, Slack, Messenger,
Twilio (messages and calls), Bot Framework, Google Chat, Webex, Mattermost and Rocket.Chat, and
random socket.io events at the chat widget's channel: never a 500, and nothing the channel does
with them afterwards (answering, storing) fails with an error."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import socketio
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from chatbot.json_input import is_unicode_text
from connectors.facebook import FacebookChannel
from connectors.outbound import RetryPolicy
from connectors.slack import SlackChannel
from connectors.socketio import SocketIOChannel
from connectors.telegram import TelegramChannel
from connectors.twilio import TwilioChannel
from tests.chatbot.server.test_fuzz import json_values, mostly, payload_texts, texts
from tests.connectors import fake_facebook, fake_twilio
from tests.connectors.fake_slack import SIGNING_SECRET, FakeSlackApi, signed
from tests.connectors.fake_slack import TOKEN as SLACK_TOKEN
from tests.connectors.fake_telegram import SECRET, TOKEN, FakeTelegramApi
from tests.connectors.servers import WAIT, ServeChannel, serve

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, timeout=2.0)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ids = st.integers(min_value=-(2**40), max_value=2**40)
users = st.fixed_dictionaries(
    {"id": mostly(ids)}, optional={"first_name": json_values, "is_bot": json_values}
)
chats = st.fixed_dictionaries({"id": mostly(ids)}, optional={"type": mostly(st.just("private"))})
entities = st.lists(
    st.fixed_dictionaries(
        {"type": mostly(st.just("bot_command")), "offset": json_values, "length": json_values}
    )
    | json_values,
    max_size=2,
)
messages = st.fixed_dictionaries(
    {
        "message_id": mostly(ids),
        "from": mostly(users),
        "chat": mostly(chats),
        "date": json_values,
        "text": mostly(payload_texts | texts(30)),
    },
    optional={"entities": mostly(entities), "caption": json_values},
)
telegram_updates = st.fixed_dictionaries(
    {"update_id": mostly(ids), "message": mostly(messages)},
    optional={
        "edited_message": json_values,
        "callback_query": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": json_values,
                    "from": mostly(users),
                    "message": mostly(messages),
                    "data": mostly(payload_texts | texts(70)),
                },
            )
        ),
    },
)

slack_events = st.fixed_dictionaries(
    {
        "type": mostly(st.sampled_from(["message", "app_mention"])),
        "user": mostly(st.sampled_from(["U1", "U2"]) | texts(10)),
        "channel": mostly(st.sampled_from(["D1", "C1"]) | texts(10)),
        "text": mostly(payload_texts | texts(30)),
        "ts": mostly(st.sampled_from(["1.1", "2.2"]) | json_values),
        "channel_type": mostly(st.sampled_from(["im", "channel"])),
    },
    optional={"thread_ts": json_values, "bot_id": json_values, "subtype": json_values},
)
slack_envelopes = st.fixed_dictionaries(
    {
        "type": mostly(st.sampled_from(["event_callback", "url_verification"])),
        "event": mostly(slack_events),
    },
    optional={
        "event_id": json_values,
        "challenge": json_values,
        "authorizations": json_values,
    },
)

slack_actions = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["button", "static_select", "datepicker"]))},
    optional={
        "value": mostly(payload_texts),
        "selected_option": mostly(st.fixed_dictionaries({"value": mostly(payload_texts)})),
        "selected_date": json_values,
        "action_ts": json_values,
    },
)
slack_interactions = st.fixed_dictionaries(
    {
        "type": mostly(st.just("block_actions")),
        "user": mostly(st.fixed_dictionaries({"id": mostly(st.sampled_from(["U1", "U2"]))})),
        "actions": mostly(st.lists(mostly(slack_actions), max_size=2)),
    },
    optional={
        "channel": mostly(st.fixed_dictionaries({"id": mostly(st.just("D1"))})),
        "container": json_values,
        "message": mostly(
            st.fixed_dictionaries(
                {"ts": mostly(st.just("1.1"))}, optional={"thread_ts": json_values}
            )
        ),
        "trigger_id": json_values,
    },
)


messenger_messages = st.fixed_dictionaries(
    {"mid": mostly(texts(12)), "text": mostly(payload_texts | texts(30))},
    optional={
        "quick_reply": mostly(st.fixed_dictionaries({"payload": mostly(payload_texts)})),
        "is_echo": json_values,
        "attachments": mostly(
            st.lists(
                st.fixed_dictionaries(
                    {"type": mostly(st.just("audio")), "payload": mostly(st.just({"url": "u"}))}
                )
                | json_values,
                max_size=2,
            )
        ),
    },
)
messenger_events = st.fixed_dictionaries(
    {
        "sender": mostly(st.fixed_dictionaries({"id": mostly(st.sampled_from(["1", "2"]) | ids)})),
        "timestamp": json_values,
    },
    optional={
        "message": mostly(messenger_messages),
        "postback": mostly(
            st.fixed_dictionaries(
                {}, optional={"payload": mostly(payload_texts), "title": json_values}
            )
        ),
    },
)
messenger_deliveries = st.fixed_dictionaries(
    {
        "object": mostly(st.just("page")),
        "entry": mostly(
            st.lists(
                mostly(
                    st.fixed_dictionaries(
                        {"messaging": mostly(st.lists(mostly(messenger_events), max_size=3))}
                    )
                ),
                max_size=2,
            )
        ),
    }
)


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@FUZZ
@given(update=telegram_updates | json_values)
# Shapes that once were a 500 (an object's place taken by a number or a string).
@example(update={"update_id": 1, "callback_query": {"id": None, "data": "/greet", "message": 1}})
@example(update={"update_id": 1, "message": {"chat": {"id": 1}, "from": "x", "text": "/greet"}})
@example(
    update={
        "update_id": 1,
        "callback_query": {"data": "#x", "message": {"chat": {"id": 1}, "reply_markup": 5}},
    }
)
@example(update={"update_id": 1, "message": {"chat": {"id": "a\x00" * 200}, "text": "/greet"}})
async def test_telegram_updates_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, update: Any
) -> None:
    caplog.clear()
    api = FakeTelegramApi()
    async with serve(api.app) as fake:
        channel = TelegramChannel.from_credentials(
            {"access_token": TOKEN, "secret_token": SECRET, "api_url": fake.url}
        )
        channel.api.policy = FAST
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/telegram/webhook"
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)
    no_errors(caplog)


@FUZZ
@given(
    envelope=slack_envelopes | json_values,
    form=st.booleans(),
    interaction=slack_interactions | json_values,
)
@example(
    envelope={"type": "event_callback", "event": {}, "authorizations": 1},
    form=False,
    interaction=None,
)
@example(
    envelope=None,
    form=True,
    interaction={"type": "block_actions", "user": "U1", "actions": 5, "message": []},
)
@example(
    envelope=None,
    form=True,
    interaction={
        "type": "block_actions",
        "user": {"id": "U1"},
        "channel": {"id": "D1"},
        "actions": [{"type": "static_select", "selected_option": "x"}],
    },
)
async def test_slack_events_never_fail(
    serve_channel: ServeChannel,
    caplog: pytest.LogCaptureFixture,
    envelope: Any,
    form: bool,
    interaction: Any,
) -> None:
    """``form``: a click on an interactive element (a form-encoded ``payload``) instead."""
    caplog.clear()
    api = FakeSlackApi()
    async with serve(api.app) as fake:
        channel = SlackChannel.from_credentials(
            {
                "slack_token": SLACK_TOKEN,
                "slack_signing_secret": SIGNING_SECRET,
                "slack_api_url": f"{fake.url}/api",
            }
        )
        channel.api.policy = FAST
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/slack/webhook"
            if form:
                body = urlencode({"payload": json.dumps(interaction)}).encode()
                headers = signed(body, content_type="application/x-www-form-urlencoded")
            else:
                body = json.dumps(envelope).encode()
                headers = signed(body)
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)
    no_errors(caplog)


socketio_events = st.tuples(
    st.sampled_from(["session_request", "user_uttered", "user_uttered", "session_history"]),
    mostly(
        st.fixed_dictionaries(
            {"message": mostly(payload_texts | texts(30)), "metadata": json_values},
            optional={"session_id": json_values},
        )
    ),
)


@FUZZ
@given(
    events=st.lists(socketio_events, min_size=1, max_size=4).map(
        lambda events: [("session_request", None), *events]  # mostly after a session request
    )
    | st.lists(socketio_events, min_size=1, max_size=4)
)
@example(events=[("session_request", None), ("user_uttered", {"message": "hi", "metadata": [1]})])
async def test_socketio_events_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, events: list[tuple[str, Any]]
) -> None:
    caplog.clear()
    async with serve_channel(SocketIOChannel()) as served:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(served.url, transports=["websocket"], wait_timeout=WAIT)
        try:
            confirmed: asyncio.Queue[Any] = asyncio.Queue()
            client.on("session_confirm", confirmed.put)
            for name, data in events:
                if name == "session_request":
                    await client.emit(name, data)
                    await asyncio.wait_for(confirmed.get(), WAIT)  # always confirmed
                else:
                    await client.call(name, data, timeout=WAIT)  # every event is answered
        finally:
            await client.disconnect()
    no_errors(caplog)


@FUZZ
@given(payload=messenger_deliveries | json_values)
async def test_messenger_deliveries_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    caplog.clear()
    api = fake_facebook.FakeSendApi()
    async with serve(api.app) as fake:
        channel = FacebookChannel.from_credentials(
            {
                "verify": fake_facebook.VERIFY,
                "secret": fake_facebook.APP_SECRET,
                "page-access-token": fake_facebook.PAGE_TOKEN,
                "api_url": fake.url,
            }
        )
        channel.api.policy = FAST
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/facebook/webhook"
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **fake_facebook.signed(body)}
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)
    no_errors(caplog)


twilio_fields = st.dictionaries(
    st.sampled_from(
        ["From", "Body", "MessageSid", "NumMedia", "MediaUrl0", "To", "SpeechResult", "CallStatus"]
    )
    | texts(8),
    payload_texts
    | st.sampled_from(["+15550001", "whatsapp:+1555", "1", "0", "ringing"])
    | texts(20),
    max_size=6,
)


@FUZZ
@given(fields=twilio_fields)
@example(fields={"From": "+1555", "Body": "", "NumMedia": "1"})
async def test_twilio_requests_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, fields: dict[str, str]
) -> None:
    # A form field is UTF-8 on the wire: no lone surrogate gets there.
    assume(all(is_unicode_text(k) and is_unicode_text(v) for k, v in fields.items()))
    caplog.clear()
    api = fake_twilio.FakeMessagesApi()
    async with serve(api.app) as fake:
        channel = TwilioChannel.from_credentials(
            {
                "account_sid": fake_twilio.ACCOUNT,
                "auth_token": fake_twilio.AUTH_TOKEN,
                "twilio_number": fake_twilio.NUMBER,
                "api_url": fake.url,
            }
        )
        channel.api.policy = FAST
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/twilio/webhook"
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": fake_twilio.signature(url, fields),
            }
            body = fake_twilio.form_body(fields)
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)
    no_errors(caplog)


activity_shapes = st.fixed_dictionaries(
    {
        "type": mostly(st.sampled_from(["message", "conversationUpdate", "typing"])),
        "from": mostly(st.fixed_dictionaries({"id": mostly(st.sampled_from(["29:u1", "29:u2"]))})),
        "conversation": mostly(st.fixed_dictionaries({"id": mostly(st.just("a:1"))})),
        "recipient": json_values,
        "text": mostly(payload_texts | texts(30)),
        "channelId": mostly(st.sampled_from(["msteams", "webchat"])),
    },
    optional={"id": json_values, "value": json_values, "attachments": json_values},
)


@FUZZ
@given(activity=activity_shapes | json_values)
async def test_bot_framework_activities_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, activity: Any
) -> None:
    """Every activity is signed for the fake connector's service URL, which it claims."""
    from connectors.botframework import BotFrameworkChannel
    from tests.connectors import fake_botframework as fake_bf

    caplog.clear()
    microsoft = fake_bf.FakeMicrosoft()
    async with serve(microsoft.app) as fake:
        microsoft.url = fake.url
        channel = BotFrameworkChannel.from_credentials(
            {
                "app_id": fake_bf.APP_ID,
                "app_password": fake_bf.APP_PASSWORD,
                "login_url": fake.url,
                "openid_url": f"{fake.url}/v1/.well-known/openidconfiguration",
            }
        )
        channel.api.policy = FAST
        if isinstance(activity, dict):
            activity = {**activity, "serviceUrl": fake.url}
        headers = {"Authorization": f"Bearer {fake_bf.token(fake.url)}"}
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/botframework/webhook"
            async with http.post(url, json=activity, headers=headers) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)
    no_errors(caplog)


chat_events = st.fixed_dictionaries(
    {
        "type": mostly(
            st.sampled_from(["MESSAGE", "CARD_CLICKED", "ADDED_TO_SPACE", "REMOVED_FROM_SPACE"])
        ),
        "user": mostly(st.fixed_dictionaries({"name": mostly(st.just("users/1"))})),
        "space": mostly(st.fixed_dictionaries({"type": mostly(st.sampled_from(["DM", "ROOM"]))})),
    },
    optional={
        "message": mostly(
            st.fixed_dictionaries(
                {"text": mostly(payload_texts | texts(30))},
                optional={"argumentText": json_values, "sender": json_values},
            )
        ),
        "action": mostly(st.fixed_dictionaries({"actionMethodName": mostly(payload_texts)})),
        "common": json_values,
    },
)


@FUZZ
@given(chat_event=chat_events | json_values)
async def test_google_chat_events_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, chat_event: Any
) -> None:
    from connectors.hangouts import HangoutsChannel
    from tests.connectors import fake_hangouts as google

    caplog.clear()
    certs = google.FakeGoogleCerts()
    async with serve(certs.app) as fake:
        channel = HangoutsChannel.from_credentials(
            {"project_id": google.PROJECT, "certs_url": f"{fake.url}/x509/chat"}
        )
        headers = {"Authorization": f"Bearer {google.token()}"}
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/hangouts/webhook"
            async with http.post(url, json=chat_event, headers=headers) as response:
                assert response.status < 500, await response.text()
    no_errors(caplog)


plain_messages = st.fixed_dictionaries(
    {
        "token": mostly(st.just("hook-token")),
        "channel_id": mostly(st.sampled_from(["c1", "c2"]) | texts(10)),
        "user_id": mostly(st.sampled_from(["u1", "u2"]) | texts(10)),
        "user_name": mostly(st.sampled_from(["ann", "bot"]) | texts(10)),
        "text": mostly(payload_texts | texts(30)),
    },
    optional={
        "post_id": json_values,
        "message_id": json_values,
        "trigger_word": json_values,
        "context": json_values,
        "bot": json_values,
        "visitor": json_values,
        "messages": json_values,
        "_id": json_values,
        "resource": mostly(st.just("messages")),
        "data": json_values,
    },
)


@FUZZ
@given(
    payload=plain_messages | json_values,
    kind=st.sampled_from(["mattermost", "rocketchat", "webexteams"]),
)
@example(
    payload={"resource": "messages", "data": {"id": "m1", "personId": "p9"}, "text": "/greet"},
    kind="webexteams",
)
@example(
    payload={"token": "hook-token", "channel_id": "c1", "user_id": "u1", "post_id": "p",
             "text": "@bot /greet", "trigger_word": "@bot"},
    kind="mattermost",
)  # fmt: skip
# A token holding a lone surrogate (JSON's "\\ud800") was a 500 once.
@example(payload={"token": "\ud800", "channel_id": "c1", "text": "/greet"}, kind="mattermost")
@example(payload={"token": "\ud800", "channel_id": "c1", "text": "/greet"}, kind="rocketchat")
async def test_token_checked_chat_webhooks_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, payload: Any, kind: str
) -> None:
    """Mattermost, Rocket.Chat and Webex, their API faked by a server that answers every call
    (a Webex message read back is the fuzzed payload itself)."""
    from aiohttp import web

    from connectors.registry import channel_class

    caplog.clear()

    async def anything(request: web.Request) -> web.Response:
        if request.method == "GET" and "/messages/" in request.path:
            body = payload if isinstance(payload, dict) else {}
            return web.json_response({"personId": "p1", "roomId": "r1", **body})
        return web.json_response(
            {"success": True, "id": "x", "data": {"authToken": "a", "userId": "b"}}
        )

    fake_api = web.Application()
    fake_api.router.add_route("*", "/{tail:.*}", anything)
    async with serve(fake_api) as fake:
        credentials = {
            "mattermost": {"url": fake.url, "token": "t", "webhook_token": "hook-token"},
            "rocketchat": {
                "user": "bot", "password": "p", "server_url": fake.url, "webhook_token": "hook-token"
            },
            "webexteams": {"access_token": "t", "api_url": fake.url},
        }[kind]  # fmt: skip
        cls = channel_class(kind)
        assert cls is not None
        channel = cls.from_credentials(credentials)
        channel.api.policy = FAST  # type: ignore[attr-defined]
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            url = f"{served.url}/webhooks/{kind}/webhook"
            async with http.post(url, json=payload) as response:
                assert response.status < 500, await response.text()
            await channel.workers.close(grace=10)  # type: ignore[attr-defined]
    no_errors(caplog)


@FUZZ
@given(fields=twilio_fields)
async def test_twilio_voice_requests_never_fail(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture, fields: dict[str, str]
) -> None:
    from connectors.twilio_voice import TwilioVoiceChannel

    assume(all(is_unicode_text(k) and is_unicode_text(v) for k, v in fields.items()))
    caplog.clear()
    channel = TwilioVoiceChannel.from_credentials({"auth_token": fake_twilio.AUTH_TOKEN})
    async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
        url = f"{served.url}/webhooks/twilio_voice/webhook"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": fake_twilio.signature(url, fields),
        }
        async with http.post(url, data=fake_twilio.form_body(fields), headers=headers) as response:
            assert response.status < 500, await response.text()
    no_errors(caplog)
