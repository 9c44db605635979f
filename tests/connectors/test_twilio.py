"""The Twilio channel (SMS and WhatsApp) against a fake Messages API on loopback, with webhook
requests signed as Twilio signs them."""

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
from connectors.numbered_buttons import ButtonMemory
from connectors.outbound import RetryPolicy
from connectors.twilio import TwilioChannel
from connectors.twilio_messages import MAX_BODY, api_name, twilio_requests
from tests.connectors.fake_twilio import (
    ACCOUNT,
    AUTH_TOKEN,
    NUMBER,
    USER,
    FakeMessagesApi,
    form_body,
    incoming,
    signature,
    wait_sent,
)
from tests.connectors.servers import ServeChannel, Served, serve

FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)
CREDENTIALS = {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN, "twilio_number": NUMBER}
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass
class Twilio:
    served: Served
    api: FakeMessagesApi
    channel: TwilioChannel
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.served.url}/webhooks/twilio/webhook"

    async def post(
        self, fields: dict[str, str], sign_as: str | None = None, **headers: str
    ) -> tuple[int, str]:
        """POST the fields, signed for ``sign_as`` (default: the URL posted to)."""
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(sign_as or self.url, fields),
            **headers,
        }
        async with self.http.post(self.url, data=form_body(fields), headers=sent) as response:
            return response.status, await response.text()

    async def say(self, text: str, **kwargs: Any) -> None:
        status, body = await self.post(incoming(text, **kwargs))
        assert (status, body) == (200, TWIML)

    async def finish(self) -> None:
        await self.channel.workers.close(grace=10)


@pytest.fixture
def twilio_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Twilio]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Twilio]:
        api = FakeMessagesApi()
        async with serve(api.app) as fake:
            channel = TwilioChannel.from_credentials(
                {**CREDENTIALS, "api_url": fake.url, **credentials}
            )
            channel.api.policy = FAST_RETRIES
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Twilio(served, api, channel, http)

    return start


async def user_texts(agent: Agent, sender: str = USER) -> list[str]:
    stored = await agent.store.load(sender)
    return [e["text"] for e in stored.events if e["event"] == "user"]


async def test_an_sms_conversation_answers_buttons_by_number(twilio_at: Any, agent: Agent) -> None:
    async with twilio_at() as twilio:
        await twilio.say("/greet")
        (greeting,) = await wait_sent(twilio.api, 1)
        assert greeting["To"] == USER and greeting["From"] == NUMBER
        assert greeting["Body"].startswith(("Hello!", "Hi there!"))

        await twilio.say("/request_restaurant")
        asked = (await wait_sent(twilio.api, 2))[1]
        assert asked["Body"] == (
            "What cuisine would you like?\n1: Italian\n2: Chinese\n3: Mexican\n4: Indian"
        )
        await twilio.say("1")  # the first button
        await wait_sent(twilio.api, 3)
        # The bot asked for the number of people, without buttons: "1" is one person now.
        assert twilio.channel.buttons.read(USER, "1") == "1"
        await twilio.say('/inform{"number": 3}')
        outside = (await wait_sent(twilio.api, 4))[3]
        assert outside["Body"] == "Would you like to sit outside?\n1: Yes\n2: No"
        await twilio.say("yes")  # a button's title, in another case
        await wait_sent(twilio.api, 5)
        await twilio.say("/deny")
        sent = await wait_sent(twilio.api, 7)
        assert sent[5]["Body"].startswith("All done! I've asked for a table outside.")
        assert sent[6]["MediaUrl"] == "https://picsum.photos/seed/terrace/400/300"  # MMS, as Rasa
        await twilio.finish()
    assert await user_texts(agent) == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 3}',
        "/affirm",
        "/deny",
    ]


async def test_whatsapp_answers_come_from_the_whatsapp_number_with_media(
    twilio_at: Any, agent: Agent
) -> None:
    user = "whatsapp:" + USER
    async with twilio_at() as twilio:
        for text in ("/request_restaurant", "1", '/inform{"number": 2}', "1", "/deny"):
            await twilio.say(text, sender=user)
        sent = await wait_sent(twilio.api, 6)
        assert {(m["To"], m["From"]) for m in sent} == {(user, "whatsapp:" + NUMBER)}
        assert sent[-1] == {
            "To": user,
            "From": "whatsapp:" + NUMBER,
            "MediaUrl": "https://picsum.photos/seed/terrace/400/300",
        }
    assert (await user_texts(agent, user))[1] == '/inform{"cuisine": "italian"}'


@pytest.mark.parametrize("header", ["another token", "none", "not base64"])
async def test_requests_without_a_valid_signature_are_refused_and_never_processed(
    twilio_at: Any, agent: Agent, header: str
) -> None:
    async with twilio_at() as twilio:
        fields = incoming("/greet")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if header == "another token":
            headers["X-Twilio-Signature"] = signature(twilio.url, fields, "another token")
        elif header == "not base64":
            headers["X-Twilio-Signature"] = "\u00ff not base64"
        async with twilio.http.post(
            twilio.url, data=form_body(fields), headers=headers
        ) as response:
            assert response.status == 403
        # Signed for another URL (or, as good as, other fields): refused too.
        status, _ = await twilio.post(incoming("/greet"), sign_as=twilio.url + "?x=1")
        assert status == 403
        await twilio.say("/goodbye")
        await wait_sent(twilio.api, 1)
        await twilio.finish()
    assert await user_texts(agent) == ["/goodbye"]


async def test_a_proxy_that_ends_https_or_changes_the_host_still_verifies(
    twilio_at: Any, agent: Agent
) -> None:
    async with twilio_at() as twilio:
        public = "https://bot.example.com/webhooks/twilio/webhook"
        fields = incoming("/greet")
        status, _ = await twilio.post(fields, sign_as=public)
        assert status == 403  # the server cannot know that URL ...
        status, _ = await twilio.post(
            fields,
            sign_as=public,
            **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"},
        )
        assert status == 200  # ... unless the proxy says it
        https_here = twilio.url.replace("http://", "https://")
        status, _ = await twilio.post(incoming("/goodbye"), sign_as=https_here)
        assert status == 200  # TLS ended at a proxy on this host
        await wait_sent(twilio.api, 2)
    async with twilio_at(webhook_url=public) as twilio:
        status, _ = await twilio.post(incoming("/greet", sender="+15550000001"), sign_as=public)
        assert status == 200
        status, _ = await twilio.post(incoming("/greet", sender="+15550000002"))
        assert status == 403  # with webhook_url, that URL only
        await wait_sent(twilio.api, 1)
    assert await user_texts(agent) == ["/greet", "/goodbye"]


async def test_a_retried_message_is_answered_once(twilio_at: Any, agent: Agent) -> None:
    async with twilio_at() as twilio:
        fields = incoming("/greet", sid="SM" + "1" * 32)
        for _ in range(3):
            assert (await twilio.post(fields))[0] == 200
        await twilio.finish()
        assert len(twilio.api.sent()) == 1
    assert await user_texts(agent) == ["/greet"]


async def test_media_without_text_and_the_at_sign_as_rasa_reads_them(
    twilio_at: Any, agent: Agent
) -> None:
    async with twilio_at() as twilio:
        photo = "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1"
        await twilio.say("", NumMedia="1", MediaUrl0=photo, MediaContentType0="image/jpeg")
        await twilio.say("mail me at ann¡example.com")
        await twilio.post(incoming("   "))  # nothing said: nothing answered
        await wait_sent(twilio.api, 2)
        await twilio.finish()
    assert await user_texts(agent) == [photo, "mail me at ann@example.com"]


async def test_send_failures_are_retried_and_refusals_logged_without_the_token(
    twilio_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with twilio_at() as twilio:
        twilio.api.answers = [(503, {"code": 20503, "message": "Service Unavailable"})]
        await twilio.say("/greet")
        await wait_sent(twilio.api, 1)
        invalid = {
            "code": 21211,
            "message": "The 'To' number +1555 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
        }
        twilio.api.answers = [(400, invalid)]
        await twilio.say("/goodbye")
        await twilio.api.attempts.wait_count(3)
        await twilio.finish()
        assert len(twilio.api.attempts.items) == 3  # the refusal was not retried
    assert "twilio Messages.json: HTTP 503; retry 1 of 2" in caplog.text
    assert "twilio Messages: refused (The 'To' number +1555 is not a valid phone number.)" in (
        caplog.text
    )
    assert AUTH_TOKEN not in caplog.text


async def test_a_reminder_is_sent_to_the_number(twilio_at: Any) -> None:
    async with twilio_at() as twilio:
        send = twilio.served.app[OUTPUTS]["twilio"]
        await send(USER, [{"recipient_id": USER, "text": "Your table is ready."}], {})
        (sms,) = await wait_sent(twilio.api, 1)
        assert sms == {"To": USER, "From": NUMBER, "Body": "Your table is ready."}


def test_bot_messages_as_messages_api_requests() -> None:
    long = "word " * 700  # 3,500 characters
    bodies = [r["Body"] for r in twilio_requests({"text": long.strip()})]
    assert len(bodies) == 3 and all(len(b) <= MAX_BODY for b in bodies)
    assert " ".join(bodies).split() == long.split()
    assert twilio_requests({"text": "One.\n\nTwo."}) == [
        {"Body": "One."},
        {"Body": "Two."},
    ]
    # Custom payloads in the Python client's names (as Rasa users write them) or the API's.
    custom = {"media_url": ["https://x.example/a.png"], "body": "", "from_": "+1999"}
    assert twilio_requests({"custom": custom}) == [
        {"MediaUrl": ["https://x.example/a.png"], "Body": "", "From": "+1999"}
    ]
    template = {"ContentSid": "HX123", "ContentVariables": '{"1": "12/1"}'}
    assert twilio_requests({"custom": template}) == [template]
    assert api_name("messaging_service_sid") == "MessagingServiceSid"
    assert api_name("StatusCallback") == "StatusCallback"


def test_button_memory_reads_a_number_or_a_title_once() -> None:
    memory = ButtonMemory(max_entries=2)
    memory.offered("a", [("Yes", "/affirm"), ("No", "/deny")])
    assert memory.read("a", "3") == "3"  # not a button: the text itself, the buttons kept
    assert memory.read("a", " NO ") == "/deny"
    assert memory.read("a", "1") == "1"  # spent
    for conversation in ("a", "b", "c"):
        memory.offered(conversation, [("Yes", "/affirm")])
    assert memory.read("a", "1") == "1"  # the oldest was forgotten
    assert memory.read("c", "1") == "/affirm"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"account_sid": ACCOUNT, "auth_token": "t"}, "twilio: 'twilio_number' is required"),
        ({**CREDENTIALS, "auth_token": ""}, "twilio: 'auth_token' must be a non-empty string"),
        ({**CREDENTIALS, "twilio_number": 15017122661}, "twilio: 'twilio_number' must be a"),
        ({**CREDENTIALS, "number": "+1"}, "twilio: unknown key(s) number"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TwilioChannel.from_credentials(params)
    assert str(caught.value).startswith(error)
