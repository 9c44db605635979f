"""Slack's Events API in, its Web API (``chat.postMessage``) out, as Rasa's Slack channel.

``POST /webhooks/slack/webhook`` takes event callbacks (JSON) and interactive payloads (form field
``payload=``, for clicked buttons), each signed by Slack: ``X-Slack-Signature`` is ``v0=`` and
HMAC-SHA256 of ``v0:<X-Slack-Request-Timestamp>:<raw body>`` under the signing secret. A request
that is unsigned, wrongly signed or more than five minutes old is answered 401 and never read.

A verified event is acknowledged at once (Slack retries after three seconds) and answered in the
background: each conversation has one worker, so its messages are answered in order. Slack's
retries and its double delivery of a mention (as ``message`` and ``app_mention``) are processed
once: events are remembered by event id and by channel + ``ts``.

Handled: direct messages, mentions, messages in ``slack_channel``, in threads (answered in the
thread; ``use_threads`` also threads answers to top-level messages) and button clicks. Ignored:
bots (the bot itself included), edits, joins and other message subtypes.

credentials.yml ``slack:`` keys: ``slack_token`` (xoxb-..., required), ``slack_signing_secret``
(required), ``slack_channel`` (a channel id whose every message the bot reads), ``use_threads``,
``slack_retry_reason_header``, ``slack_retry_number_header``, ``errors_ignore_retry`` (retries
for these reasons are refused with ``X-Slack-No-Retry: 1``; default ``[http_timeout]``),
``conversation_granularity`` (``sender``, ``channel`` or ``thread``) and ``slack_api_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.json_input import loads
from chatbot.server.bodies import read_body
from chatbot.store.base import conversation_id_problem
from connectors.base import BackgroundChannel, json_object, same_secret
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.outbound import ApiClient, RetryPolicy
from connectors.slack_blocks import slack_posts
from connectors.turns import answer, refusal

logger = logging.getLogger(__name__)

SIGNATURE_WINDOW = 300  # seconds a signed request stays valid, as Slack's own SDKs check
GRANULARITIES = ("sender", "channel", "thread")
HANDLED_SUBTYPES = (None, "thread_broadcast", "file_share")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>")


@dataclass(frozen=True)
class Incoming:
    """One user message (or button click) to answer."""

    text: str
    user: str
    channel: str
    conversation_id: str
    reply_thread: str | None  # the thread_ts the answers go to, if any
    bot_user: str | None
    keys: tuple[str, ...] = ()  # what identifies the delivery, to answer it once
    # Rasa's metadata: the message's thread (its thread_ts, else its own ts) and the users
    # the event was authorised for (authed_users; a click: the user who clicked).
    thread_id: str | None = None
    users: tuple[str, ...] = ()


def signature_ok(secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """None when Slack signed the request; else why not."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "the request is not signed (no X-Slack-Signature / X-Slack-Request-Timestamp)"
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if age > SIGNATURE_WINDOW:
        return "the request's timestamp is more than five minutes away"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not same_secret(signature, expected):
        return "the signature does not match"
    return None


def sanitize(text: str, bot_user: str | None) -> str:
    """The text Slack sent, as the user typed it: no mention of the bot, links as their label."""
    if bot_user:
        text = re.sub(rf"\s*<@{re.escape(bot_user)}(\|[^>]*)?>\s*", " ", text)
    text = _LINK.sub(lambda m: m.group(2), text)
    text = re.sub(r"<((?:https?|mailto):[^>|]+)>", r"\1", text)
    return unescape(text).strip()


def _interactive_value(action: dict[str, Any]) -> str | None:
    """What a clicked or chosen interactive element stands for (as Rasa reads it)."""
    kind = action.get("type")
    if kind == "button":
        return action.get("value")
    if kind in ("static_select", "external_select", "overflow", "radio_buttons"):
        return json_object(action.get("selected_option")).get("value")
    selected = {
        "conversations_select": "selected_conversation",
        "users_select": "selected_user",
        "channels_select": "selected_channel",
        "datepicker": "selected_date",
    }.get(str(kind))
    return action.get(selected) if selected else None


class SlackChannel(BackgroundChannel):
    name = "slack"

    def __init__(
        self,
        *,
        slack_token: str,
        slack_signing_secret: str,
        slack_channel: str | None = None,
        use_threads: bool = False,
        slack_retry_reason_header: str = "X-Slack-Retry-Reason",
        slack_retry_number_header: str = "X-Slack-Retry-Num",
        errors_ignore_retry: list[str] | tuple[str, ...] | None = None,
        conversation_granularity: str = "sender",
        slack_api_url: str = "https://slack.com/api",
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if conversation_granularity not in GRANULARITIES:
            raise ConfigError(
                f"slack: 'conversation_granularity' must be one of {', '.join(GRANULARITIES)}, "
                f"not {conversation_granularity!r}"
            )
        self.signing_secret = slack_signing_secret
        self.slack_channel = slack_channel
        self.use_threads = use_threads
        self.retry_reason_header = slack_retry_reason_header
        self.retry_number_header = slack_retry_number_header
        self.errors_ignore_retry = tuple(errors_ignore_retry or ("http_timeout",))
        self.granularity = conversation_granularity
        self.clock = clock
        self.api = ApiClient(
            "slack",
            slack_api_url,
            headers={"Authorization": f"Bearer {slack_token}"},
            policy=retry,
        )
        self.seen = Deliveries("slack")
        self.workers = ConversationWorkers("slack")
        self._agent_getter: Callable[[], Agent] | None = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> SlackChannel:
        params = dict(params or {})
        params.pop("proxy", None)  # Rasa's; unused (aiohttp honours HTTPS_PROXY if trust_env)
        for key in ("slack_token", "slack_signing_secret"):
            if not params.get(key):
                raise ConfigError(f"slack: '{key}' is required (from your Slack app's settings)")
            if not isinstance(params[key], str):
                raise ConfigError(f"slack: '{key}' must be a string, not {params[key]!r}")
        known = {
            "slack_token",
            "slack_signing_secret",
            "slack_channel",
            "use_threads",
            "slack_retry_reason_header",
            "slack_retry_number_header",
            "errors_ignore_retry",
            "conversation_granularity",
            "slack_api_url",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"slack: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if not isinstance(params.get("use_threads", False), bool):
            raise ConfigError(
                f"slack: 'use_threads' must be true or false, not {params['use_threads']!r}"
            )
        ignore = params.get("errors_ignore_retry")
        if ignore is not None and not (
            isinstance(ignore, list) and all(isinstance(x, str) for x in ignore)
        ):
            raise ConfigError(
                f"slack: 'errors_ignore_retry' must be a list of reasons, not {ignore!r}"
            )
        return cls(**params)

    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (a reminder): where the conversation's latest message
        came from (its channel and thread, kept in the message's metadata), else a direct
        message to the user."""
        channel = metadata.get("out_channel")
        if not isinstance(channel, str) or not channel:
            channel = conversation_id.split("_", 1)[0]  # the user: a direct message
        thread = metadata.get("thread_id")
        await self._post(messages, channel, thread if isinstance(thread, str) else None)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        problem = signature_ok(self.signing_secret, request.headers, body, self.clock())
        if problem is not None:
            logger.warning("slack: refused a request: %s", problem)
            return web.json_response({"error": problem, "status": 401}, status=401)
        retry_number = request.headers.get(self.retry_number_header)
        retry_reason = request.headers.get(self.retry_reason_header)
        if retry_number and retry_reason in self.errors_ignore_retry:
            logger.info("slack: retry #%s (%s) refused", retry_number, retry_reason)
            return web.Response(text="", headers={"X-Slack-No-Retry": "1"})
        if request.content_type == "application/x-www-form-urlencoded":
            incoming = self._from_interaction(body)
        else:
            try:
                envelope = loads(body)
            except ValueError:
                return web.json_response(
                    {"error": "the body is not JSON", "status": 400}, status=400
                )
            if not isinstance(envelope, dict):
                return web.json_response(
                    {"error": "the body is not an object", "status": 400}, status=400
                )
            if envelope.get("type") == "url_verification":
                return web.json_response({"challenge": envelope.get("challenge")})
            incoming = self._from_event(envelope)
        if incoming is not None and not await self.first_time(*incoming.keys):
            logger.debug("slack: delivery %s seen before; ignored", ", ".join(incoming.keys))
            return web.Response(text="")
        app = request.app
        if incoming is not None and refusal(app, incoming.conversation_id, incoming.text) is None:
            self.workers.submit(incoming.conversation_id, lambda: self._answer(incoming, app))
        return web.Response(text="")

    def _conversation_id(self, user: str, channel: str, thread: str | None) -> str:
        if self.granularity == "channel":
            return f"{user}_{channel}"
        if self.granularity == "thread" and thread:
            return f"{user}_{channel}_{thread}"
        return user

    def _from_event(self, envelope: dict[str, Any]) -> Incoming | None:
        event = envelope.get("event")
        if envelope.get("type") != "event_callback" or not isinstance(event, dict):
            return None
        # Every part is checked for its type: a malformed event is ignored, never an error.
        authorizations = envelope.get("authorizations")
        first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
        bot_user = json_object(first).get("user_id")
        if not isinstance(bot_user, str):
            bot_user = None
        kind, user, channel = event.get("type"), event.get("user"), event.get("channel")
        text, ts = event.get("text"), event.get("ts")
        if (
            kind not in ("message", "app_mention")
            or event.get("subtype") not in HANDLED_SUBTYPES
            or event.get("bot_id")
            or not isinstance(user, str)
            or user == bot_user
            or not isinstance(channel, str)
            or not isinstance(text, str)
            or not isinstance(ts, str)
        ):
            return None
        if not (
            kind == "app_mention"
            or event.get("channel_type") == "im"
            or (self.slack_channel and channel == self.slack_channel)
        ):
            return None
        text = sanitize(text, bot_user)
        if not text:
            return None
        keys = [f"ts:{channel}:{ts}"]
        if envelope.get("event_id"):
            keys.append(f"event:{envelope['event_id']}")
        thread = _text(event.get("thread_ts"))
        reply_thread = thread or (ts if self.use_threads else None)
        conversation_id = self._conversation_id(user, channel, thread or ts)
        if conversation_id_problem(conversation_id) is not None:
            return None
        authed = envelope.get("authed_users")
        if isinstance(authed, list) and all(isinstance(u, str) for u in authed):
            users = tuple(authed)
        else:
            users = (bot_user,) if bot_user else ()
        return Incoming(
            text,
            user,
            channel,
            conversation_id,
            reply_thread,
            bot_user,
            tuple(keys),
            thread_id=thread or ts,
            users=users,
        )

    def _from_interaction(self, body: bytes) -> Incoming | None:
        try:
            payload = loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            logger.warning("slack: an interactive request without a JSON 'payload'")
            return None
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return None
        listed = payload.get("actions")
        actions = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
        value = _interactive_value(actions[0]) if actions else None
        user = json_object(payload.get("user")).get("id")
        container = json_object(payload.get("container"))
        channel = json_object(payload.get("channel")).get("id") or container.get("channel_id")
        message = json_object(payload.get("message"))
        message_ts = _text(message.get("ts")) or _text(container.get("message_ts"))
        if not isinstance(value, str) or not isinstance(user, str) or not isinstance(channel, str):
            return None
        action_ts = actions[0].get("action_ts")
        key = payload.get("trigger_id") or f"{channel}:{message_ts}:{action_ts}"
        thread = _text(message.get("thread_ts"))
        conversation_id = self._conversation_id(user, channel, thread or message_ts)
        if conversation_id_problem(conversation_id) is not None:
            return None
        return Incoming(
            value,
            user,
            channel,
            conversation_id,
            thread,
            None,
            (f"action:{key}",),
            thread_id=thread or message_ts,
            users=(user,),
        )

    async def _answer(self, incoming: Incoming, app: web.Application) -> None:
        metadata = {  # Rasa's SlackInput.get_metadata
            "out_channel": incoming.channel,
            "thread_id": incoming.thread_id,
            "users": list(incoming.users),
        }
        message = UserMessage(incoming.text, incoming.conversation_id, self.name, metadata)
        await self._post(await answer(app, message), incoming.channel, incoming.reply_thread)

    async def _post(self, messages: list[dict[str, Any]], channel: str, thread: str | None) -> None:
        for bot_message in messages:
            for post in slack_posts(bot_message, channel):
                if thread:
                    post.setdefault("thread_ts", thread)
                posted = await self.api.call("chat.postMessage", post)
                if posted is not None and not posted.ok:
                    logger.error(
                        "slack chat.postMessage: refused (%s); the message was not delivered",
                        posted.body.get("error", f"HTTP {posted.status}"),
                    )


def _text(value: Any) -> str | None:
    """``value`` where it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None
