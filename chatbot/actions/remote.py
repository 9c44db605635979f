"""Custom actions over HTTP: the rasa-sdk action server protocol (``action_endpoint: url:``).

A 400 is the action rejecting itself (ActionRejected: the processor predicts again without it). A
timeout, a refused connection, a 5xx or a malformed answer is an ActionError (the processor answers
the user with ``utter_action_failed`` and stores nothing of the action). After ``failure_threshold``
such failures in a row the circuit opens: calls fail at once for ``open_seconds``, then one call
is let through to find out whether the server is back.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from chatbot.actions.action_call import DomainJSONCache, action_call
from chatbot.actions.base import ActionContext
from chatbot.capped_read import AnswerTooLarge, read_at_most
from chatbot.errors import ActionError, ActionRejected
from chatbot.json_input import loads

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_OPEN_SECONDS = 30.0
PING_TIMEOUT = 2.0


class CircuitBreaker:
    """Closed (calls go through) -> open after ``failure_threshold`` failures in a row (calls fail
    at once) -> after ``open_seconds``, half-open: one trial call; success closes, failure reopens.
    ``failure_threshold=0`` never opens."""

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        open_seconds: float = DEFAULT_OPEN_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.clock = clock
        self.consecutive_failures = 0
        self.total_failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    def is_open(self) -> bool:
        return self._opened_at is not None

    def wait_time(self) -> float:
        """0.0 when a call may go now (taking the trial slot when half-open), else the seconds
        until one may."""
        if self._opened_at is None:
            return 0.0
        remaining = self._opened_at + self.open_seconds - self.clock()
        if remaining > 0:
            return remaining
        if self._trial_running:
            return self.open_seconds
        self._trial_running = True
        return 0.0

    def succeeded(self) -> None:
        if self._opened_at is not None:
            logger.info("action server answers again; circuit closed")
        self.consecutive_failures = 0
        self._opened_at = None
        self._trial_running = False

    def failed(self) -> None:
        self.consecutive_failures += 1
        self.total_failures += 1
        self._trial_running = False
        if self._opened_at is not None:
            self._opened_at = self.clock()  # the trial call failed: stay open
        elif self.failure_threshold and self.consecutive_failures >= self.failure_threshold:
            self._opened_at = self.clock()
            logger.error(
                "action server failed %d times in a row; refusing calls for %g s",
                self.consecutive_failures,
                self.open_seconds,
            )

    def released(self) -> None:
        """A call that neither succeeded nor failed the server (rejected, 404) ends its trial."""
        if self._trial_running:
            self.succeeded()


class HTTPActionExecutor:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        cafile: str | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        if basic_auth is not None:
            credentials = base64.b64encode(":".join(basic_auth).encode()).decode()
            self.headers["Authorization"] = f"Basic {credentials}"
        self.params = params or {}
        self.ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=cafile) if cafile else True
        )
        self.breaker = breaker or CircuitBreaker()
        self.domain_json = DomainJSONCache()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self.headers,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def health_url(self) -> str:
        """rasa-sdk's ``/health`` beside the webhook (``http://host:5055/webhook`` ->
        ``http://host:5055/health``)."""
        parts = urlsplit(self.url)
        path = parts.path.rsplit("/", 1)[0] + "/health"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    async def ping(self) -> bool:
        """Whether the action server answers its ``/health`` (for health checks); never raises."""
        try:
            async with self._client().get(
                self.health_url, timeout=aiohttp.ClientTimeout(total=PING_TIMEOUT), ssl=self.ssl
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        wait = self.breaker.wait_time()
        if wait > 0.0:
            raise ActionError(
                name,
                f"the action server at {self.url} failed {self.breaker.consecutive_failures} "
                f"times in a row; not calling it for another {max(wait, 0.1):.1f} s",
            )
        call = action_call(name, ctx, self.domain_json.get(ctx.domain))
        try:
            body = await self._post(name, call)
        except (ActionRejected, _UnknownAction):
            self.breaker.released()
            raise
        except ActionError:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.released()  # cancelled: says nothing about the server
            raise
        self.breaker.succeeded()
        return body

    async def _post(self, name: str, call: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._client().post(
                self.url, json=call, params=self.params, ssl=self.ssl
            ) as response:
                if response.status == 400:
                    body = await _json_or_text(response)
                    reason = body.get("error", "") if isinstance(body, dict) else ""
                    raise ActionRejected(name, str(reason or ""))
                if response.status == 404:
                    raise _UnknownAction(
                        name, f"the action server at {self.url} does not know it (404)"
                    )
                if response.status >= 300:
                    raise ActionError(
                        name, f"the action server at {self.url} answered {response.status}"
                    )
                body = await _json_or_text(response)
        except asyncio.TimeoutError:
            raise ActionError(
                name, f"no answer from {self.url} within {self.timeout:g} s"
            ) from None
        except AnswerTooLarge:
            raise ActionError(
                name, f"the answer of {self.url} is larger than {MAX_ANSWER_BYTES:,} bytes"
            ) from None
        except aiohttp.ClientError as exc:
            raise ActionError(
                name, f"cannot reach the action server at {self.url} ({exc})"
            ) from None
        if body is None:  # rasa-sdk answers null for an action that returned nothing
            return {"events": [], "responses": []}
        if not isinstance(body, dict):
            raise ActionError(name, "the action server's answer is not a JSON object")
        return body


class _UnknownAction(ActionError):
    """The action server answered 404: a configuration mistake, not a failing server."""


# The largest answer read from an action server: a runaway one (a loop that never stops
# writing events) fails the action instead of filling the bot's memory.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    data = await read_at_most(response, MAX_ANSWER_BYTES)
    try:
        return loads(data)
    except ValueError:
        return data.decode(errors="replace")
