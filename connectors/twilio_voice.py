"""Twilio Voice: the bot on a phone call, as Rasa's ``twilio_voice`` channel.

Twilio POSTs to ``/webhooks/twilio_voice/webhook`` when a call comes in and, through ``<Gather
input="speech">``, each time the caller has spoken (``SpeechResult``), or said nothing. The answer
is TwiML: the bot's texts read out (``<Say>``, a pause between two), the last inside a ``<Gather>``
that listens for the caller's reply. As in Rasa: a new call (``CallStatus`` ringing) starts with
``initial_prompt`` as the caller's message; silence repeats the bot's last utterance, its buttons
too (or ``reprompt_fallback_phrase``); buttons are read out after the text, their titles for the
caller to say; images are left out. Every request must carry Twilio's signature
(``X-Twilio-Signature``, checked as the Twilio channel checks it), so ``auth_token`` is required,
which Rasa's channel neither had nor checked.

credentials.yml ``twilio_voice:`` keys (Rasa's): ``initial_prompt`` ("hello"),
``reprompt_fallback_phrase``, ``assistant_voice`` ("woman"; any voice Twilio knows, Polly and
Google voices included), ``speech_timeout`` (seconds, or "auto"), ``speech_model`` ("default"),
``enhanced`` (false); ours: ``auth_token`` (required) and ``webhook_url`` (the URL Twilio calls,
where a proxy changes it beyond X-Forwarded-Proto/Host).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.ranges import whole_number
from chatbot.store.base import conversation_id_problem
from connectors.base import InputChannel
from connectors.turns import answer, refusal
from connectors.twilio import signed_form

logger = logging.getLogger(__name__)

DEFAULTS = {
    "initial_prompt": "hello",
    "reprompt_fallback_phrase": "I'm sorry I didn't get that could you rephrase.",
    "assistant_voice": "woman",
    "speech_timeout": "5",
    "speech_model": "default",
    "enhanced": "false",
}


class TwilioVoiceChannel(InputChannel):
    name = "twilio_voice"

    def __init__(self, *, auth_token: str, webhook_url: str | None = None, **options: str) -> None:
        self.auth_token = auth_token.encode()
        self.webhook_url = webhook_url
        self.options = {**DEFAULTS, **options}
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> TwilioVoiceChannel:
        params = dict(params or {})
        known = {*DEFAULTS, "auth_token", "webhook_url"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"twilio_voice: unknown key(s) {', '.join(unknown)}; known: "
                + ", ".join(sorted(known))
            )
        if not isinstance(params.get("auth_token"), str) or not params["auth_token"]:
            raise ConfigError(
                "twilio_voice: 'auth_token' is required: the Twilio account's auth token, which "
                "Twilio signs its requests with (without it anyone could call the webhook)"
            )
        options: dict[str, str] = {}
        for key in DEFAULTS:
            if key not in params:
                continue
            value = params[key]
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"twilio_voice: '{key}' must be a non-empty string, not {value!r}"
                )
            options[key] = value
        timeout = options.get("speech_timeout", DEFAULTS["speech_timeout"])
        if not (whole_number(timeout) is not None or timeout == "auto"):
            raise ConfigError(
                f"twilio_voice: 'speech_timeout' must be whole seconds or 'auto', not {timeout!r}"
            )
        enhanced = options.get("enhanced", DEFAULTS["enhanced"]).lower()
        if enhanced not in ("true", "false"):
            raise ConfigError(f"twilio_voice: 'enhanced' must be true or false, not {enhanced!r}")
        options["enhanced"] = enhanced
        webhook_url = params.get("webhook_url")
        if webhook_url is not None and (not isinstance(webhook_url, str) or not webhook_url):
            raise ConfigError(
                f"twilio_voice: 'webhook_url' must be a non-empty string, not {webhook_url!r}"
            )
        return cls(auth_token=params["auth_token"], webhook_url=webhook_url, **options)

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        self._agent_getter = agent_getter

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_get(f"/webhooks/{self.name}/", health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        fields = await signed_form(request, self.auth_token, self.webhook_url, self.name)
        if fields is None:
            return web.json_response({"error": "invalid signature", "status": 403}, status=403)
        form = dict(fields)
        caller = form.get("From", "")
        if not caller or conversation_id_problem(caller) is not None:
            return _twiml(self._gather([]))
        text = form.get("SpeechResult")
        if not text and form.get("CallStatus") == "ringing":
            text = self.options["initial_prompt"]
        if not text or not text.strip():
            return _twiml(self._gather(await self._last_said(caller)))
        if refusal(request.app, caller, text) is not None:
            return _twiml(self._gather([self.options["reprompt_fallback_phrase"]]))
        messages = await answer(request.app, UserMessage(text, caller, self.name))
        return _twiml(self._gather(spoken(messages)))

    async def _last_said(self, caller: str) -> list[str]:
        """What the bot said last to this caller (its buttons too), else the reprompt phrase."""
        fallback = [self.options["reprompt_fallback_phrase"]]
        if self._agent_getter is None:
            return fallback
        try:
            stored = await self._agent_getter().store.load(caller)
        except Exception as error:  # the store is away: the phrase does
            logger.warning("twilio_voice: %s; reprompting with the fallback phrase", error)
            return fallback
        for event in reversed(stored.events):
            if event.get("event") == "bot":
                data = event.get("data") if isinstance(event.get("data"), dict) else {}
                again = spoken([{"text": event.get("text"), "buttons": data.get("buttons")}])
                if again:
                    return again
        return fallback

    def _gather(self, texts: list[str]) -> ElementTree.Element:
        response = ElementTree.Element("Response")
        gather = ElementTree.Element(
            "Gather",
            {
                "input": "speech",
                "action": f"/webhooks/{self.name}/webhook",
                "actionOnEmptyResult": "true",
                "speechTimeout": self.options["speech_timeout"],
                "speechModel": self.options["speech_model"],
                "enhanced": self.options["enhanced"],
            },
        )
        voice = {"voice": self.options["assistant_voice"]}
        for i, text in enumerate(texts):
            if i + 1 < len(texts):
                ElementTree.SubElement(response, "Say", voice).text = text
                ElementTree.SubElement(response, "Pause", {"length": "1"})
            else:
                ElementTree.SubElement(gather, "Say", voice).text = text
        response.append(gather)
        return response


def spoken(messages: list[dict[str, Any]]) -> list[str]:
    """What of the bot's messages can be said: the texts in parts at blank lines (as Rasa), each
    button's title after its text; images and custom payloads are left out."""
    texts: list[str] = []
    for message in messages:
        text = message.get("text")
        if isinstance(text, str):
            texts.extend(p for p in text.strip().split("\n\n") if p.strip())
        for button in message.get("buttons") or []:
            if isinstance(button, dict) and str(button.get("title", "")).strip():
                texts.append(str(button["title"]))
        if message.get("image") or message.get("custom") or message.get("attachment"):
            logger.debug("twilio_voice: an image or payload left out of the call")
    return texts


def _twiml(response: ElementTree.Element) -> web.Response:
    body = '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(
        response, encoding="unicode"
    )
    return web.Response(text=body, content_type="text/xml")
