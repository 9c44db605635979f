"""Rasa's ``callback_url`` on ``POST /model/train`` and ``POST /model/test/intents``: the request
is answered at once with ``204 No Content``, the work goes on in the background, and when it
ends its answer (the model file, the evaluation) or its error (Rasa's error JSON, the status in
its ``code``) is POSTed to the URL with the answer's Content-Type, as Rasa's
``async_if_callback_url`` does.

Unlike Rasa, a mistake in the request itself (a query parameter, a body that cannot be read) is
still that request's own 4xx: only the work's outcome goes to the URL. The URL must be http or
https with a host. A delivery is tried three times (1 and 2 s apart, 30 s each); one that never
arrives is logged with the URL (the answer is not kept). At most ``MAX_PENDING`` answers wait at
once (then 503). At shutdown the works still running are cancelled (a training's process is
killed), and their URLs are told so with a 503 error where they answer within 5 s.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from yarl import URL

from chatbot.server.errors import error_body, json_error

logger = logging.getLogger(__name__)

MAX_PENDING = 16
ATTEMPTS = 3
DELIVERY_TIMEOUT = 30.0
SHUTDOWN_DELIVERY_TIMEOUT = 5.0
JSON = "application/json"

Work = Callable[[], Awaitable[web.Response]]


class LaterAnswers:
    """The works whose answers go to a callback URL, cancelled at shutdown."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.retry_delay = 1.0  # doubled after each failed delivery

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        yield
        if self.tasks:
            logger.warning(
                "%d request(s) with a callback_url cancelled by the shutdown", len(self.tasks)
            )
            for task in self.tasks:
                task.cancel()
            await asyncio.wait(set(self.tasks))

    def start(self, url: str, work: Work, what: str) -> web.Response:
        if len(self.tasks) >= MAX_PENDING:
            raise json_error(
                503,
                f"{MAX_PENDING} requests with a callback_url are still running; try again later",
                headers={"Retry-After": "60"},
            )
        task = asyncio.create_task(self._run(url, work, what))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.Response(status=204)

    async def _run(self, url: str, work: Work, what: str) -> None:
        try:
            response = await work()
        except asyncio.CancelledError:
            stopped = error_body(503, f"the server stopped before the {what} ended", "Cancelled")
            await self._deliver(
                url,
                json.dumps(stopped).encode(),
                {"Content-Type": JSON},
                what,
                attempts=1,
                timeout=SHUTDOWN_DELIVERY_TIMEOUT,
            )
            raise
        except web.HTTPException as error:  # the work's own error, in Rasa's error JSON
            logger.warning("%s for callback %s failed: %s", what, url, error.text)
            headers = {"Content-Type": error.content_type or JSON}
            await self._deliver(url, (error.text or "").encode(), headers, what)
            return
        except Exception as error:  # any failure is told to the callback
            logger.exception("%s for callback %s failed", what, url)
            failed = error_body(500, f"the {what} failed on the server: {error}", "UnexpectedError")
            await self._deliver(url, json.dumps(failed).encode(), {"Content-Type": JSON}, what)
            return
        headers = {"Content-Type": response.content_type}
        if "filename" in response.headers:
            headers["filename"] = response.headers["filename"]
        body = response.body if isinstance(response.body, bytes) else b""
        await self._deliver(url, body, headers, what)

    async def _deliver(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        what: str,
        attempts: int = ATTEMPTS,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> None:
        delay = self.retry_delay
        problem = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                    # A stream: a model file of many MB is not sent in one write.
                    session.post(url, data=io.BytesIO(body), headers=headers) as answer,
                ):
                    if answer.status < 400:
                        logger.info("%s: answer posted to %s", what, url)
                        return
                    problem = f"it answered {answer.status}"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure to deliver is logged below, none is raised
                problem = str(error) or type(error).__name__
        logger.error(
            "%s: the answer could not be posted to callback_url %s (%d attempt(s); %s)",
            what,
            url,
            attempts,
            problem,
        )


LATER_ANSWERS = web.AppKey("later_answers", LaterAnswers)


def register_later_answers(app: web.Application) -> None:
    app[LATER_ANSWERS] = LaterAnswers()
    app.cleanup_ctx.append(app[LATER_ANSWERS].lifecycle)


def callback_url(request: web.Request) -> str | None:
    """The request's ``callback_url`` (None where it has none or an empty one, as Rasa reads
    it); a 400 where it is not an http(s) URL with a host."""
    url = request.query.get("callback_url")
    if not url:
        return None
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise json_error(400, f"callback_url must be an http or https URL, not {url!r}")
    return url


async def answer_now_or_later(request: web.Request, work: Work, what: str) -> web.Response:
    """``work``'s answer, or a 204 now and the answer posted to the request's ``callback_url``
    once ``work`` ends."""
    url = callback_url(request)
    if url is None:
        return await work()
    return request.app[LATER_ANSWERS].start(url, work, what)
