"""Errors to HTTP answers, in one place.

Every error a client receives is JSON in Rasa's shape (``{"version", "status": "failure",
"message", "reason", "details", "help", "code"}``), never a traceback. ``failure_of`` is the one
table from exceptions to statuses. When the bot cannot answer a user (its database is gone, the
conversation is busy), a channel request gets a short apology as the bot's message, with the status
(a 503): the user is told, the client can retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from chatbot.agent import NoModelLoaded, __version__
from chatbot.conversation.events import InvalidEvent
from chatbot.errors import (
    ActionError,
    ActionRejected,
    ChatbotError,
    ConflictError,
    LockTimeout,
    ModelFileError,
    StoreUnavailable,
)
from chatbot.server.limits import MessageTooLong, Overloaded, RateLimited

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now. Please try again in a moment."

# Set by a channel on its request: the id of the user the bot answers (see ``reply_to``).
REPLY_TO = web.RequestKey("reply_to", str)

_REASONS = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "NotAuthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "ServerError",
    502: "ActionServerError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Failure:
    """How an exception is answered. ``apology``: a user waiting for the bot is told sorry."""

    status: int
    reason: str
    message: str
    apology: bool = False
    retry_after: float | None = None
    # The status of a user's message to a channel, when not ``status``.
    channel_status: int | None = None


def failure_of(exc: BaseException) -> Failure:
    """The one table from exceptions to HTTP answers."""
    if isinstance(exc, RateLimited):
        return Failure(429, "TooManyRequests", str(exc), retry_after=exc.retry_after)
    if isinstance(exc, MessageTooLong):
        return Failure(413, "MessageTooLong", str(exc))
    if isinstance(exc, Overloaded):
        return Failure(503, "Overloaded", str(exc), apology=True, retry_after=exc.retry_after)
    if isinstance(exc, InvalidEvent):
        return Failure(400, "InvalidEvent", str(exc))
    if isinstance(exc, StoreUnavailable):
        return Failure(
            503,
            "StoreUnavailable",
            "the conversation store is unavailable; try again shortly",
            apology=True,
            retry_after=5.0,
        )
    if isinstance(exc, LockTimeout):
        return Failure(
            503,
            "ConversationBusy",
            "the conversation is busy with earlier messages; try again shortly",
            apology=True,
            retry_after=1.0,
        )
    if isinstance(exc, ConflictError):
        return Failure(
            409,
            "Conflict",
            "the conversation changed meanwhile; try again",
            apology=True,
            retry_after=1.0,
        )
    if isinstance(exc, NoModelLoaded):
        # As Rasa's API: a 409 until a model is loaded; a channel's client may retry later.
        return Failure(409, "NoModelLoaded", str(exc), retry_after=5.0, channel_status=503)
    if isinstance(exc, ModelFileError):
        return Failure(400, "BadModel", str(exc))
    if isinstance(exc, ActionRejected):
        return Failure(409, "ActionRejected", str(exc))
    if isinstance(exc, ActionError):
        return Failure(502, "ActionServerError", str(exc))
    return Failure(500, "ServerError", "the server failed to handle the request", apology=True)


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "version": __version__,
        "status": "failure",
        "message": message,
        "reason": reason or _REASONS.get(status, "Error"),
        "details": {},
        "help": None,
        "code": status,
    }


def json_error(
    status: int, message: str, reason: str | None = None, headers: dict[str, str] | None = None
) -> web.HTTPException:
    """An HTTP error with a JSON body, for a handler to raise."""
    exc = web.HTTPException(
        text=json.dumps(error_body(status, message, reason)),
        content_type="application/json",
        headers=headers,
    )
    exc.set_status(status)
    return exc


def reply_to(request: web.Request, sender_id: str) -> None:
    """Mark ``request`` as a user's message to the bot: a failure then answers the user with an
    apology in the channel's message format, as well as the status."""
    request[REPLY_TO] = sender_id


def apology_messages(recipient_id: str) -> list[dict[str, Any]]:
    return [{"recipient_id": recipient_id, "text": APOLOGY}]


def retry_after_header(seconds: float | None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))} if seconds else {}


def failure_response(failure: Failure, recipient_id: str | None = None) -> web.Response:
    headers = retry_after_header(failure.retry_after)
    status = failure.status
    if recipient_id is not None:
        status = failure.channel_status or status
        if failure.apology:
            return web.json_response(apology_messages(recipient_id), status=status, headers=headers)
    body = error_body(status, failure.message, failure.reason)
    return web.json_response(body, status=status, headers=headers)


def log_failure(exc: BaseException, failure: Failure, request: web.Request) -> None:
    route = route_name(request)
    if failure.status >= 500 and not isinstance(exc, ChatbotError):
        logger.error("%s %s failed", request.method, route, exc_info=exc)
    elif failure.status >= 500:
        logger.error("%s %s: %s", request.method, route, exc)
    else:
        logger.debug("%s %s: %s", request.method, route, exc)


def route_name(request: web.Request) -> str:
    """The route's pattern (``/conversations/{conversation_id}/tracker``), not the raw path."""
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        # aiohttp's own errors (404, 405, 413 ...) as JSON, keeping their headers (``Allow``).
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return web.json_response(
            error_body(exc.status, message), status=exc.status, headers=headers
        )
    except Exception as exc:
        failure = failure_of(exc)
        log_failure(exc, failure, request)
        return failure_response(failure, request.get(REPLY_TO))


def response_deadline(seconds: float) -> Middleware:
    """Rasa's ``--response-timeout``: a request not answered within ``seconds`` of its arrival
    is answered 503 and its handler cancelled (a turn cut off stores nothing: its events are
    written at its end, in one transaction). Websockets (socket.io) last as long as their
    connection and are left alone."""

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not expired:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            logger.warning(
                "%s %s not answered within --response-timeout %g s; 503",
                request.method,
                request.path,
                seconds,
            )
            raise json_error(
                503, f"the answer took longer than {seconds:g} s", "ResponseTimeout"
            ) from None
        finally:
            timer.cancel()

    return deadline
