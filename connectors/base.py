"""The channel interface: a channel mounts its webhook routes on the server's application.

A channel hands each user message to the server's gate, ``request.app[GATE].handle(message)``
(``chatbot.server.keys.GATE``): it applies the message-length and per-sender rate limits, counts
and times the turn for ``/metrics`` and logs it without the user's text. When the bot cannot
answer (``chatbot.server.errors.failure_of(exc).apology``: the store is down, the conversation is
busy), the channel sends ``chatbot.server.errors.APOLOGY`` to the user instead of staying silent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from chatbot.errors import ConfigError
from chatbot.server.keys import OUTPUTS
from connectors.delivery import ConversationWorkers


class InputChannel(ABC):
    """One extension point per channel: REST, callback, socket.io, Slack, Telegram."""

    name: str

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> InputChannel:
        """The channel from its credentials.yml block; a bad setting is a ConfigError (the
        server adds the file and line)."""
        return cls()

    @abstractmethod
    def register(self, app: web.Application, agent_getter: Any) -> None:
        """Add this channel's routes under ``/webhooks/<name>/``."""


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


class Outbound(Protocol):
    """What ``mount_webhook`` starts and stops with the server: the channel's API client."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> None: ...


def mount_webhook(
    app: web.Application,
    name: str,
    webhook: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    api: Outbound,
    workers: ConversationWorkers,
    send: Callable[..., Awaitable[None]],
) -> None:
    """The routes and lifecycle of a channel that acknowledges a delivery at once and answers in
    the background through the platform's API: ``GET /webhooks/<name>/`` (health), ``POST
    /webhooks/<name>/webhook``, the workers finished at shutdown (what is queued is answered),
    the API client open while the server runs, and ``send`` as the channel's output (reminders)."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stop_workers(app: web.Application) -> None:
        await workers.close()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with api:
            yield
            await workers.close(grace=0)

    app.router.add_get(f"/webhooks/{name}/", health)
    app.router.add_post(f"/webhooks/{name}/webhook", webhook)
    app.on_shutdown.append(stop_workers)
    app.cleanup_ctx.append(lifecycle)
    app[OUTPUTS][name] = send


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts, as Rasa's channels send it: at blank lines, and parts longer than
    ``limit`` cut at the last space in their second half (else at the limit)."""
    parts: list[str] = []
    for block in text.split("\n\n"):
        while len(block) > limit:
            cut = block.rfind(" ", limit // 2, limit)
            cut = cut if cut > 0 else limit
            parts.append(block[:cut])
            block = block[cut:].lstrip(" ")
        if block.strip():
            parts.append(block)
    return parts
