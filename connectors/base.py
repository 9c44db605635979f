"""The channel interface: a channel mounts its webhook routes on the server's application.

A channel hands each user message to the server's gate, ``request.app[GATE].handle(message)``
(``chatbot.server.keys.GATE``): it applies the message-length and per-sender rate limits, counts
and times the turn for ``/metrics`` and logs it without the user's text. When the bot cannot
answer (``chatbot.server.errors.failure_of(exc).apology``: the store is down, the conversation is
busy), the channel sends ``chatbot.server.errors.APOLOGY`` to the user instead of staying silent.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from aiohttp import web

from chatbot.errors import ConfigError
from chatbot.server.keys import OUTPUTS
from connectors.delivery import ConversationWorkers, Deliveries
from connectors.outbound import ApiClient


class InputChannel(ABC):
    """One extension point per channel (REST, callback, socket.io, and ``BackgroundChannel``'s)."""

    name: str
    # The keys of credentials.yml's block that a channel reads where others are ignored with a
    # warning naming the file and line (``connectors.registry.channel_of``), as Rasa ignores
    # them; None where the channel checks its keys itself (an unknown one is an error there).
    known_keys: ClassVar[frozenset[str] | None] = None

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> InputChannel:
        """The channel from its credentials.yml block; a bad setting is a ConfigError (the
        server adds the file and line)."""
        return cls()

    @abstractmethod
    def register(self, app: web.Application, agent_getter: Any) -> None:
        """Add this channel's routes under ``/webhooks/<name>/``."""

    def entry(self) -> str:
        """Where clients reach the channel, as ``chatbot run``'s ready line names it."""
        return f"{self.name}: POST /webhooks/{self.name}/webhook"


def same_secret(presented: object, expected: str | bytes) -> bool:
    """Whether a presented token or signature is ``expected``, compared in constant time as
    bytes. A header's bytes that are not UTF-8 come as surrogate escapes and a JSON string may
    hold a lone surrogate: ``surrogatepass`` turns any of them into bytes (which never match a
    real secret) instead of an error."""
    raw = str(presented).encode("utf-8", "surrogatepass")
    return hmac.compare_digest(raw, expected.encode() if isinstance(expected, str) else expected)


def json_object(value: Any) -> dict[str, Any]:
    """``value`` where it is a JSON object, else an empty one: a platform's payload read without
    trusting its shape."""
    return value if isinstance(value, dict) else {}


def string_credentials(
    channel: str,
    params: dict[str, Any] | None,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    what: str = "",
) -> dict[str, Any]:
    """A credentials.yml block of string keys, checked: a ConfigError names an unknown key, a
    missing ``required`` one (``what`` says where to find them) or a value that is not a
    non-empty string."""
    params = dict(params or {})
    known = {*required, *optional}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"{channel}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    for key in (*required, *optional):
        value = params.get(key)
        if key in required and value is None:
            raise ConfigError(f"{channel}: '{key}' is required" + (f" ({what})" if what else ""))
        if key in params and (not isinstance(value, str) or not value):
            raise ConfigError(f"{channel}: '{key}' must be a non-empty string, not {value!r}")
    return params


class BackgroundChannel(InputChannel):
    """A channel that acknowledges a delivery at once and answers in the background through the
    platform's API (Slack, Telegram, Messenger, Twilio, Bot Framework, Webex, Mattermost,
    Rocket.Chat). ``register`` mounts ``GET /webhooks/<name>/`` (health) and ``POST
    /webhooks/<name>/webhook``, keeps the API client open while the server runs (``on_start``
    then runs, with the client open), finishes the workers at shutdown (what is queued is
    answered) and makes ``send`` the channel's output (reminders). ``first_time`` says whether a
    delivery is new (a platform's re-sends are not), with the server's lock store where it is
    shared by several processes."""

    api: ApiClient
    workers: ConversationWorkers
    seen: Deliveries
    _agent_getter: Callable[[], Any] | None = None

    @abstractmethod
    async def webhook(self, request: web.Request) -> web.StreamResponse: ...

    @abstractmethod
    async def send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None: ...

    async def on_start(self) -> None:
        """Run once the API client is open (Telegram sets its webhook here)."""

    def register(self, app: web.Application, agent_getter: Callable[[], Any]) -> None:
        self._agent_getter = agent_getter

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def stop_workers(app: web.Application) -> None:
            await self.workers.close()

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            async with self.api:
                await self.on_start()
                yield
                await self.workers.close(grace=0)

        app.router.add_get(f"/webhooks/{self.name}/", health)
        app.router.add_post(f"/webhooks/{self.name}/webhook", self.webhook)
        app.on_shutdown.append(stop_workers)
        app.cleanup_ctx.append(lifecycle)
        app[OUTPUTS][self.name] = self.send

    async def first_time(self, *keys: str) -> bool:
        locks = self._agent_getter().locks if self._agent_getter is not None else None
        return await self.seen.first_time(locks, *keys)
