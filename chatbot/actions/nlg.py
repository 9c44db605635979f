"""An NLG server (endpoints.yml ``nlg:``), as in Rasa: the bot's responses come from it.

::

    nlg:
      url: http://localhost:5056/nlg   # POSTed for every response the bot sends
      timeout: 5                       # seconds (default 5)
      token: secret                    # sent as ?token=secret; and headers, as action_endpoint

As Rasa's CallbackNaturalLanguageGenerator, the server is asked for every response an action
sends (``utter_x``, a form's ``utter_ask_x``, a custom action's ``utter_message(response=...)``),
whatever the domain has for it: a response may live on the server only. The request is Rasa's
``{"response", "id", "arguments", "tracker", "channel": {"name"}}`` (``id``: the domain's
variation that applies, as Rasa 3.6.4+; ``arguments``: a custom action's other keys, such as
``name="Joe"``) plus ``template``, the name Rasa 2 servers read. The answer is the message to
send (``{"text", "buttons", "image", "custom", ...}``; other keys go into the bot event's
metadata); ``{}``, ``null`` or an empty body says nothing is to be sent.

Where the server fails (down, slow, an error, an answer that is no message) the domain's own
response is sent and the cause logged, so that a user is not left without an answer; Rasa sends
nothing there (the action fails). Where the domain has no response either, nothing is sent.
``type: response`` uses the domain's responses, as without ``nlg:``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import aiohttp

from chatbot.actions.base import ActionContext, message_problem, with_given, with_metadata
from chatbot.conversation.responses import MESSAGE_KEYS, choose_variation
from chatbot.errors import ChatbotError, ConfigError
from chatbot.json_input import loads
from chatbot.project.domain import Domain
from chatbot.project.endpoints import EndpointBlock, url_problem
from chatbot.ranges import finite_number

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
_KNOWN_KEYS = {"url", "type", "timeout", "token", "token_name", "headers", "params"}
# The channel name Rasa sends when a response is not for an input channel.
COLLECTOR = "collector"


class NLGServerFailed(ChatbotError):
    """The NLG server gave no answer that can be used (what it did is the message)."""


class NLGClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self._session: aiohttp.ClientSession | None = None
        self.failures = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self.headers
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def respond(
        self, ctx: ActionContext, response: str, given: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The message an action sends for ``response``: the server's answer with ``given``
        (a custom action's other keys) added as Rasa adds them; None where the server answers
        that nothing is to be said. Where the server fails, the domain's message (None where
        the domain has none), logged."""
        slots = ctx.conversation.slots
        try:
            answer = await self.generate(
                response,
                dict(given),
                ctx.conversation.as_tracker(),
                ctx.channel,
                variation_id(ctx.domain, response, slots, ctx.channel),
            )
        except NLGServerFailed as failure:
            self.failures += 1
            message = ctx.domain_message(response, given)
            logger.error(
                "NLG server %s %s for %s; %s",
                self.url,
                failure,
                response,
                "nothing is sent (the domain has no message for it)"
                if message is None
                else "the domain's response is sent instead",
            )
            return message
        if answer is None:
            logger.debug("NLG server %s has nothing to say for %s", self.url, response)
            return None
        message = with_metadata({k: answer[k] for k in MESSAGE_KEYS if k in answer}, answer)
        return with_given(message, given)

    async def generate(
        self,
        response: str,
        arguments: dict[str, Any],
        tracker: dict[str, Any],
        channel: str | None,
        variation: Any = None,
    ) -> dict[str, Any] | None:
        """The server's message for ``response`` (``variation``: the ``id`` of the domain's
        variation that applies); None where it answers ``{}``, ``null`` or nothing, which is
        Rasa's "the endpoint did not want to respond with anything". NLGServerFailed where
        it fails."""
        body = {
            "response": response,
            "template": response,  # the name Rasa 2 servers read
            "id": variation,
            "arguments": arguments,
            "tracker": tracker,
            "channel": {"name": channel or COLLECTOR},
        }
        try:
            async with self._client().post(self.url, json=body, params=self.params) as answer:
                if answer.status != 200:
                    raise NLGServerFailed(f"answered {answer.status}")
                try:
                    message = await answer.json(loads=loads, content_type=None)
                except ValueError as exc:
                    raise NLGServerFailed(f"answered what is no JSON ({exc})") from exc
        except asyncio.TimeoutError as exc:
            raise NLGServerFailed(f"gave no answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NLGServerFailed(f"cannot be reached ({exc})") from exc
        if message is None or message == "":
            return None
        if not isinstance(message, dict):
            raise NLGServerFailed(f"answered no message (not an object: {message!r:.60})")
        problem = _answer_problem(message)
        if problem is not None:
            raise NLGServerFailed(f"answered a message that cannot be sent ({problem})")
        return message or None


def _answer_problem(answer: dict[str, Any]) -> str | None:
    """What makes an NLG server's answer no message, as Rasa's ``nlg_response_format_spec``
    has it (an image that is no string, an attachment or custom payload that is no object), or
    an action's message (``message_problem``) cannot be."""
    problem = message_problem(answer)
    if problem is not None:
        return problem
    for key, kind, what in (
        ("image", str, "a string"),
        ("attachment", dict, "an object"),
        ("custom", dict, "an object"),
    ):
        value = answer.get(key)
        if value is not None and not isinstance(value, kind):
            return f"its '{key}' is not {what}: {value!r:.60}"
    return None


class _FirstChoice(random.Random):
    """Chooses the first candidate: Rasa sends the id of the first variation that applies."""

    def choice(self, seq: Any) -> Any:
        return seq[0]


def variation_id(
    domain: Domain, response: str, slots: Mapping[str, Any], channel: str | None
) -> Any:
    """The ``id`` of the first of ``response``'s domain variations that apply (the one Rasa
    3.6.4+'s ``ResponseVariationFilter.get_response_variation_id`` gives), or None where none
    applies or it has no id."""
    variations = domain.responses.get(response) or ()
    variation = choose_variation(variations, slots, channel, _FirstChoice())
    return None if variation is None else variation.data.get("id")


def create_nlg_client(block: EndpointBlock | None) -> NLGClient | None:
    """The client of endpoints.yml's ``nlg:`` block; None without one, or with ``type:
    response`` (the domain's responses, Rasa's TemplatedNaturalLanguageGenerator). A mistake
    in it is a ConfigError naming the file, the line and the key."""
    if block is None:
        return None
    where = block.origin.prefix
    params = block.params
    block.warn_unknown_keys(_KNOWN_KEYS)
    kind = params.get("type")
    if kind == "response":
        return None
    if kind not in (None, "callback"):
        raise ConfigError(
            f"{where}nlg: type {kind!r} would be a custom NLG class, which is not supported; "
            "use 'callback' (an NLG server at 'url') or 'response' (the domain's responses)"
        )
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}nlg needs 'url' (an NLG server, http:// or https://), not {url!r}"
        )
    problem = url_problem(url)
    if problem is not None:
        raise ConfigError(f"{where}nlg: 'url' {url!r} {problem}")
    timeout = params.get("timeout", DEFAULT_TIMEOUT)
    seconds = finite_number(timeout)
    if seconds is None or seconds <= 0:
        raise ConfigError(f"{where}nlg: 'timeout' must be a positive number, not {timeout!r:.40}")
    if not all(isinstance(params.get(key) or {}, dict) for key in ("headers", "params")):
        raise ConfigError(f"{where}nlg: 'headers' and 'params' must be mappings")
    return NLGClient(url, timeout=seconds, headers=block.headers(), params=block.query())
