"""The Twilio Voice channel: a phone call as Twilio's webhook requests make it (a ringing call,
then each ``<Gather>``'s speech result or silence), signed as Twilio signs them, answered in
TwiML."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from connectors.twilio_voice import TwilioVoiceChannel, spoken
from tests.connectors.fake_twilio import ACCOUNT, AUTH_TOKEN, NUMBER, USER, form_body, signature
from tests.connectors.servers import ServeChannel, Served

CALL = "CA5f4b0e5c5e9e4f0e8a0f3c8b1d2e3f4a"


def call_fields(**more: str) -> dict[str, str]:
    """The fields of Twilio's voice webhook request for a call from USER."""
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "From": USER,
        "To": NUMBER,
        **more,
    }


@dataclass
class Call:
    served: Served
    channel: TwilioVoiceChannel
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.served.url}/webhooks/twilio_voice/webhook"

    async def post(self, fields: dict[str, str], token: str = AUTH_TOKEN) -> tuple[int, str]:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(self.url, fields, token),
        }
        async with self.http.post(self.url, data=form_body(fields), headers=headers) as response:
            return response.status, await response.text()

    async def twiml(self, **fields: str) -> ElementTree.Element:
        status, body = await self.post(call_fields(**fields))
        assert status == 200, body
        assert body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
        return ElementTree.fromstring(body)


def said(twiml: ElementTree.Element) -> list[str]:
    """What the answer reads out, in order (the last part inside the Gather)."""
    return [e.text or "" for e in twiml.iter("Say")]


@pytest.fixture
def call_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Call]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Call]:
        channel = TwilioVoiceChannel.from_credentials({"auth_token": AUTH_TOKEN, **credentials})
        async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
            yield Call(served, channel, http)

    return start


async def test_a_call_greets_listens_and_repeats_on_silence(call_at: Any, agent: Agent) -> None:
    async with call_at(initial_prompt="/greet", assistant_voice="Polly.Joanna") as call:
        ringing = await call.twiml(CallStatus="ringing")
        (gather,) = ringing.findall("Gather")
        assert gather.attrib == {
            "input": "speech",
            "action": "/webhooks/twilio_voice/webhook",
            "actionOnEmptyResult": "true",
            "speechTimeout": "5",
            "speechModel": "default",
            "enhanced": "false",
        }
        (greeting,) = gather.findall("Say")
        assert greeting.attrib == {"voice": "Polly.Joanna"}
        assert (greeting.text or "").startswith(("Hello", "Hi"))

        asked = await call.twiml(SpeechResult="/request_restaurant", Confidence="0.92")
        # The question, then its buttons' titles for the caller to say; the last one listens.
        assert said(asked) == [
            "What cuisine would you like?",
            "Italian",
            "Chinese",
            "Mexican",
            "Indian",
        ]
        assert [e.tag for e in asked] == [
            "Say",
            "Pause",
            "Say",
            "Pause",
            "Say",
            "Pause",
            "Say",
            "Pause",
            "Gather",
        ]
        silence = await call.twiml()  # no SpeechResult: the caller said nothing
        assert said(silence) == said(asked)  # the bot's last utterance, its buttons too, again
    stored = await agent.store.load(USER)
    assert [e["text"] for e in stored.events if e["event"] == "user"] == [
        "/greet",
        "/request_restaurant",
    ]


async def test_silence_before_the_bot_said_anything_is_the_reprompt(call_at: Any) -> None:
    async with call_at(reprompt_fallback_phrase="Pardon?") as call:
        assert said(await call.twiml()) == ["Pardon?"]


async def test_requests_without_twilios_signature_are_refused(call_at: Any, agent: Agent) -> None:
    async with call_at() as call:
        status, _ = await call.post(call_fields(SpeechResult="/greet"), token="another token")
        assert status == 403
        async with call.http.post(call.url, data=form_body(call_fields())) as response:
            assert response.status == 403
    assert (await agent.store.load(USER)).events == []


def test_what_the_bot_says_is_escaped_and_only_what_can_be_said() -> None:
    channel = TwilioVoiceChannel(auth_token="t")
    texts = spoken(
        [
            {"text": "Fish & chips <today>\n\nAnything else?"},
            {"image": "https://x.example/a.png"},
            {"custom": {"x": 1}},
        ]
    )
    assert texts == ["Fish & chips <today>", "Anything else?"]
    xml = ElementTree.tostring(channel._gather(texts), encoding="unicode")
    assert "Fish &amp; chips &lt;today&gt;" in xml
    assert ElementTree.fromstring(xml).find("Gather/Say").text == "Anything else?"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "twilio_voice: 'auth_token' is required"),
        ({"auth_token": "t", "speech_timeout": "soon"}, "twilio_voice: 'speech_timeout' must be"),
        ({"auth_token": "t", "enhanced": "maybe"}, "twilio_voice: 'enhanced' must be true or"),
        ({"auth_token": "t", "voice": "woman"}, "twilio_voice: unknown key(s) voice"),
        ({"auth_token": "t", "initial_prompt": ""}, "twilio_voice: 'initial_prompt' must be"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TwilioVoiceChannel.from_credentials(params)
    assert str(caught.value).startswith(error)


def test_rasas_values_are_taken_as_rasa_writes_them() -> None:
    channel = TwilioVoiceChannel.from_credentials(
        {"auth_token": "t", "speech_timeout": 3, "enhanced": True, "speech_model": "phone_call"}
    )
    assert channel.options["speech_timeout"] == "3" and channel.options["enhanced"] == "true"
