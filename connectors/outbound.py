"""A small JSON-over-HTTP client for the chat platforms' APIs (Slack's Web API, Telegram's Bot
API) that retries what is worth retrying and never raises.

``429 Too Many Requests`` waits what ``Retry-After`` (or Telegram's ``parameters.retry_after``)
asks, capped; ``5xx``, timeouts and refused connections back off exponentially with jitter. After
the last attempt it logs one line naming the API method and returns ``None``. Any other answer,
``ok: false`` included, is returned as it is for the caller to judge.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from chatbot.json_input import loads

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first one included
    base_delay: float = 0.5  # seconds before the first retry; doubled for each later one
    max_delay: float = 30.0  # cap on any one wait, Retry-After included
    timeout: float = 10.0  # seconds for one request, connection included

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1, 2, ...): exponential, with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Both platforms say ``"ok": true`` in the body of a call that worked."""
        return self.status == 200 and self.body.get("ok") is True


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class ApiClient:
    """POSTs JSON (or, with ``form=True``, form fields: Twilio's API) to ``<base_url>/<method>``.
    An async context manager (or ``start``/``close``)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
        form: bool = False,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self.policy = policy or RetryPolicy()
        self.form = form
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get(self, method: str) -> ApiAnswer | None:
        """A GET of ``<base_url>/<method>`` (Webex: a message the webhook names), retried as a
        POST is."""
        return await self.call(method, None)

    async def call(
        self,
        method: str,
        payload: dict[str, Any] | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> ApiAnswer | None:
        """The API's answer, or None (logged) once every attempt failed or the client is closed.
        A None ``payload`` is a GET. ``headers``: this call's own, beside the client's (a token
        that expires)."""
        if self._session is None:
            logger.error("%s %s: the client is not started; message not sent", self.name, method)
            return None
        policy = self.policy
        reason = "no attempt made"
        for attempt in range(1, policy.attempts + 1):
            try:
                return await self._post(self._session, method, payload, headers)
            except _Retry as retry:
                reason = retry.reason
                if attempt == policy.attempts:
                    break
                wait = policy.backoff(attempt)
                if retry.wait is not None:
                    wait = min(policy.max_delay, max(retry.wait, 0.0))
                logger.warning(
                    "%s %s: %s; retry %d of %d in %.2fs",
                    self.name,
                    method,
                    reason,
                    attempt,
                    policy.attempts - 1,
                    wait,
                )
                await asyncio.sleep(wait)
        logger.error(
            "%s %s: giving up after %d attempts (last: %s); the message was not delivered",
            self.name,
            method,
            policy.attempts,
            reason,
        )
        return None

    async def _post(
        self,
        session: aiohttp.ClientSession,
        method: str,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> ApiAnswer:
        # An absolute URL is called as it is (Bot Framework: each conversation's service URL).
        url = method if method.startswith(("https://", "http://")) else f"{self.base_url}/{method}"
        try:
            if payload is None:
                request = session.get(url, headers=headers)
            elif self.form:
                request = session.post(url, headers=headers, data=_form_fields(payload))
            else:
                request = session.post(url, headers=headers, json=payload)
            async with request as response:
                text = await response.text()
                status = response.status
                header_wait = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise _Retry(f"{type(error).__name__}: {error}".rstrip(": ")) from None
        body = _json_object(text)
        if status == 429:
            parameters = body.get("parameters")
            body_wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
            wait = header_wait if header_wait is not None else _seconds(body_wait)
            raise _Retry("429 Too Many Requests", wait)
        if status >= 500:
            raise _Retry(f"HTTP {status}")
        return ApiAnswer(status, body)


def _form_fields(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """Form fields, a list value as the same field repeated (Twilio's ``MediaUrl``)."""
    return [
        (key, ("true" if value else "false") if isinstance(value, bool) else str(value))
        for key, values in payload.items()
        for value in (values if isinstance(values, list) else [values])
        if value is not None
    ]


def _seconds(value: object) -> float | None:
    """A Retry-After value in seconds (Slack and Telegram send whole seconds)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _json_object(text: str) -> dict[str, Any]:
    try:
        body = loads(text)
    except ValueError:
        return {"ok": False, "error": "the answer is not JSON", "text": text[:200]}
    return body if isinstance(body, dict) else {"ok": False, "error": "the answer is not an object"}
