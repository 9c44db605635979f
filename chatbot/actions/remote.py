"""Custom actions over HTTP: the rasa-sdk action server protocol (``action_endpoint: url:``).

A 400 is the action rejecting itself; a timeout, a refused connection, a 5xx or a malformed answer
is an ActionError (the processor answers the user with ``utter_action_failed``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from chatbot.actions.action_call import DomainJSONCache, action_call
from chatbot.actions.base import ActionContext
from chatbot.errors import ActionError, ActionRejected

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0


class HTTPActionExecutor:
    def __init__(
        self, url: str, *, timeout: float = DEFAULT_TIMEOUT, headers: dict[str, str] | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = headers or {}
        self.domain_json = DomainJSONCache()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        call = action_call(name, ctx, self.domain_json.get(ctx.domain))
        try:
            async with self._client().post(self.url, json=call, headers=self.headers) as response:
                if response.status == 400:
                    body = await _json_or_text(response)
                    raise ActionRejected(
                        name, str(body.get("error", "")) if isinstance(body, dict) else ""
                    )
                if response.status == 404:
                    raise ActionError(
                        name, f"the action server at {self.url} does not know it (404)"
                    )
                if response.status >= 300:
                    raise ActionError(
                        name, f"the action server at {self.url} answered {response.status}"
                    )
                body = await _json_or_text(response)
        except asyncio.TimeoutError:
            raise ActionError(name, f"no answer from {self.url} within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise ActionError(
                name, f"cannot reach the action server at {self.url} ({exc})"
            ) from None
        if not isinstance(body, dict):
            raise ActionError(name, "the action server's answer is not a JSON object")
        return body


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return await response.text()
