"""Rasa 3 custom connectors (Sanic classes, ``rasa.core.channels.channel.InputChannel`` subclasses)
served on our aiohttp server, so a Rasa project's own channel runs unchanged.

A connector's ``blueprint(on_new_message)`` is a Sanic ``Blueprint``; each of its routes is mounted
under ``/webhooks/<url_prefix>/`` as Rasa mounts it (``<name>`` path parameters and Sanic's loose
trailing slash included), called with a request that has Sanic's ``json``, ``body``, ``args``,
``form``, ``headers``, ``token`` ..., and its Sanic response (or streamed response) is sent as
aiohttp's. ``on_new_message`` hands the message to the server's gate (limits, metrics, the turn) and
then gives the bot's messages to the message's output channel by Rasa's ``send_response``; a
connector that implements ``get_output_channel`` also gets the bot's messages sent outside a request
(reminders, ``trigger_intent?output_channel=``). A failure of the turn (a rate limit, the store
down) is the request's answer, as on the built-in channels, even where the connector catches it:
Rasa's template catches every exception and would answer 200 with no messages. A request body is
read within the server's body limit first; a body that is not JSON is a 400 where the connector
reads ``request.json``; Sanic exceptions (``BadRequest``, ``Unauthorized`` ...) are their status.

Not served: websocket and static routes, and a blueprint's middleware, listeners and exception
handlers (a warning names them); uploaded files (``request.files`` is empty).
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl

from aiohttp import web

from chatbot.conversation.messages import UserMessage
from chatbot.errors import ConfigError
from chatbot.json_input import NotJSON, TooDeep, kind, loads
from chatbot.server.bodies import read_body
from chatbot.server.errors import error_body, failure_of, json_error, log_failure, reply_to
from chatbot.server.keys import GATE, OUTPUTS
from chatbot.store.base import conversation_id_problem
from connectors.base import InputChannel

logger = logging.getLogger(__name__)

# Sanic's path parameter types, as aiohttp patterns; int and float values are converted.
_PARAMETER = re.compile(r"<([A-Za-z_]\w*)(?::([^>]+))?>")
_PATTERNS = {
    "str": r"[^/]+",
    "alpha": r"[A-Za-z]+",
    "slug": r"[a-z0-9]+(?:-[a-z0-9]+)*",
    "int": r"-?\d+",
    "float": r"-?\d+(?:\.\d+)?",
    "path": r".+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
}
_CONVERT: dict[str, Callable[[str], Any]] = {"int": int, "float": float}


@dataclass
class _Exchange:
    """One request to a connector's route, while its handler runs."""

    request: web.Request
    failure: Exception | None = None


_EXCHANGE: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar(
    "sanic_exchange", default=None
)


def _json_error_of(exc: Exception, request: SanicRequest) -> web.HTTPException | None:
    """What a handler's exception answers where it is the client's: a Sanic exception
    (``BadRequest``, ``Unauthorized`` ...) its status; a failure after reading a JSON body that
    is empty or not an object (``request.json.get(...)`` on None or a list) a 400 saying so."""
    from sanic.exceptions import SanicException

    status = getattr(exc, "status_code", None)
    if isinstance(exc, SanicException) and isinstance(status, int) and status >= 400:
        return json_error(status, str(exc) or type(exc).__name__)
    if request.json_was_read and isinstance(exc, (AttributeError, TypeError, KeyError)):
        body = request.json
        if body is None:
            return json_error(400, "the request body is empty; send a JSON document")
        if not isinstance(body, dict):
            return json_error(400, f"the request body must be a JSON object, not {kind(body)}")
    return None


@dataclass
class SanicRequest:
    """The request a connector's Sanic handler reads: Sanic's attributes over aiohttp's request."""

    raw: web.Request
    body: bytes
    form: Any
    match_info: dict[str, Any]
    ctx: SimpleNamespace = field(default_factory=SimpleNamespace)
    _json: Any = field(default=None, init=False)
    _json_read: bool = field(default=False, init=False)

    @property
    def json_was_read(self) -> bool:
        return self._json_read

    @property
    def json(self) -> Any:
        """The body as JSON, None for no body; a ``BadRequest`` (400) for one that is not."""
        if not self._json_read:
            self._json = self.load_json()
            self._json_read = True
        return self._json

    def load_json(self, loads_: Callable[[bytes], Any] | None = None) -> Any:
        from sanic.exceptions import BadRequest

        if not self.body.strip():
            return None
        try:
            return (loads_ or loads)(self.body)
        except (NotJSON, TooDeep, ValueError):
            exchange = _EXCHANGE.get()
            if exchange is not None and exchange.failure is None:  # the answer, caught or not
                exchange.failure = json_error(400, "the request body is not valid JSON")
            raise BadRequest("the request body is not valid JSON") from None

    @property
    def args(self) -> Any:
        from sanic.request import RequestParameters

        return RequestParameters(parse_qs(self.raw.query_string))

    @property
    def query_args(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw.query_string)

    @property
    def files(self) -> Any:
        from sanic.request import RequestParameters

        return RequestParameters()

    @property
    def headers(self) -> Any:
        return self.raw.headers

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def url(self) -> str:
        return str(self.raw.url)

    @property
    def query_string(self) -> str:
        return self.raw.query_string

    @property
    def content_type(self) -> str:
        return self.raw.content_type

    @property
    def host(self) -> str:
        return self.raw.host

    @property
    def ip(self) -> str:
        return self.raw.remote or ""

    remote_addr = ip

    @property
    def cookies(self) -> dict[str, str]:
        return dict(self.raw.cookies)

    @property
    def token(self) -> str | None:
        """The ``Authorization`` header's token, without a ``Bearer``/``Token`` prefix."""
        value = self.raw.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, rest = value.partition(" ")
        return rest.strip() if rest and scheme.lower() in ("bearer", "token") else value


async def _sanic_request(request: web.Request, match_info: dict[str, Any]) -> SanicRequest:
    from sanic.request import RequestParameters

    if request.content_type == "multipart/form-data":
        posted = await request.post()
        fields: dict[str, list[str]] = {}
        for key, value in posted.items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        return SanicRequest(request, b"", RequestParameters(fields), match_info)
    body = await read_body(request)
    form = RequestParameters()
    if request.content_type == "application/x-www-form-urlencoded":
        form = RequestParameters(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
    return SanicRequest(request, body, form, match_info)


async def _aiohttp_response(answer: Any, request: web.Request) -> web.StreamResponse:
    from sanic.response import BaseHTTPResponse, ResponseStream

    if isinstance(answer, ResponseStream):
        headers = {k: v for k, v in (answer.headers or {}).items() if k.lower() != "content-type"}
        streamed = web.StreamResponse(status=answer.status, headers=headers)
        streamed.content_type = answer.content_type or "text/plain"
        await streamed.prepare(request)

        class _Writer:
            async def write(self, data: str | bytes) -> None:
                await streamed.write(data.encode() if isinstance(data, str) else data)

        try:
            await answer.streaming_fn(_Writer())  # type: ignore[arg-type]
        except web.HTTPException as exc:  # the status is sent: the stream ends with the error
            await streamed.write((exc.text or "").encode() + b"\n")
        except Exception as exc:
            failure = failure_of(exc)
            log_failure(exc, failure, request)
            body = error_body(failure.status, failure.message, failure.reason)
            await streamed.write((json.dumps(body) + "\n").encode())
        await streamed.write_eof()
        return streamed
    if isinstance(answer, BaseHTTPResponse):
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
        response = web.Response(status=answer.status, body=answer.body or b"", headers=headers)
        if answer.content_type:
            response.headers["Content-Type"] = answer.content_type
        return response
    raise TypeError(f"a connector's handler returned {type(answer).__name__}, not a Sanic response")


def _aiohttp_path(prefix: str, uri: str) -> tuple[str, dict[str, Callable[[str], Any]]]:
    """The aiohttp path of a Sanic route ``uri`` under ``prefix``, and its parameters' types."""
    convert: dict[str, Callable[[str], Any]] = {}

    def parameter(match: re.Match[str]) -> str:
        name, typed = match.group(1), (match.group(2) or "str")
        if typed not in _PATTERNS:
            raise ConfigError(f"route {uri!r}: path parameters of type {typed!r} are not served")
        if typed in _CONVERT:
            convert[name] = _CONVERT[typed]
        return f"{{{name}:{_PATTERNS[typed]}}}"

    path = _PARAMETER.sub(parameter, "/" + uri.lstrip("/"))
    return prefix.rstrip("/") + path, convert


class SanicChannel(InputChannel):
    """A Rasa connector (``connector_class``) as one of our channels."""

    connector_class: ClassVar[Any]  # the Rasa connector's class
    _app: web.Application

    def __init__(self, connector: Any) -> None:
        self.connector = connector
        prefix = connector.url_prefix()
        if not isinstance(prefix, str) or not prefix.strip("/"):
            raise ConfigError(
                f"{self.name}: url_prefix() must be a non-empty string, not {prefix!r}"
            )
        self.prefix = f"/webhooks/{prefix.strip('/')}"
        try:
            self.blueprint = connector.blueprint(self._on_new_message)
        except Exception as exc:  # the connector's own code
            raise ConfigError(f"{self.name}: its blueprint() failed: {exc!r}") from None
        if not hasattr(self.blueprint, "_future_routes"):
            raise ConfigError(f"{self.name}: blueprint() must return a Sanic Blueprint")
        self.routes = self._routes()

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> InputChannel:
        try:  # Rasa hands an empty block over as None
            return cls(cls.connector_class.from_credentials(params or None))
        except ConfigError:
            raise
        except Exception as exc:  # the connector's own code
            raise ConfigError(
                f"the Rasa connector {cls.connector_class.__name__}'s from_credentials failed: "
                f"{exc!r}"
            ) from None

    def entry(self) -> str:
        return f"{self.name}: {self.prefix}/ (a Rasa connector)"

    def register(self, app: web.Application, agent_getter: Any) -> None:
        self._app = app
        for part in ("middleware", "listeners", "exceptions", "signals", "statics"):
            if getattr(self.blueprint, f"_future_{part}", None):
                logger.warning("%s: the blueprint's %s are not run", self.name, part)
        for method, path, handler in self.routes:
            app.router.add_route(method, path, handler)
        if _overrides(type(self.connector), "get_output_channel"):
            app[OUTPUTS][self.name] = self._send

    async def _send(
        self, conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
    ) -> None:
        """Bot messages outside a request (reminders, ``trigger_intent?output_channel=``), as
        Rasa sends them: to the connector's ``get_output_channel()``, asked each time."""
        output = self.connector.get_output_channel()
        if output is None:
            logger.info("conversation %s: %s has no output channel now", conversation_id, self.name)
            return
        for message in messages:
            recipient = message.get("recipient_id", conversation_id)
            await output.send_response(
                recipient, {k: v for k, v in message.items() if k != "recipient_id"}
            )

    def _routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]]:
        """(method, path, handler) of each route of the blueprint that is served; a ConfigError
        for a path parameter of a type we do not read."""
        routes = []
        for route in sorted(self.blueprint._future_routes, key=lambda r: r.uri):
            if route.websocket or route.static:
                logger.warning(
                    "%s: route %s is not served (websocket or static)", self.name, route.uri
                )
                continue
            try:
                path, convert = _aiohttp_path(self.prefix, route.uri)
            except ConfigError as exc:
                raise ConfigError(f"{self.name}: {exc}") from None
            handler = self._serving(route.handler, convert)
            paths = (
                {path}
                if route.strict_slashes
                else {path.rstrip("/") or "/", path.rstrip("/") + "/"}
            )
            routes += [(m, p, handler) for m in sorted(route.methods) for p in sorted(paths)]
        return routes

    def _serving(
        self, handler: Callable[..., Any], convert: dict[str, Callable[[str], Any]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            parameters: dict[str, Any] = dict(request.match_info)
            try:
                for name, to in convert.items():
                    parameters[name] = to(parameters[name])
            except ValueError:
                raise web.HTTPNotFound() from None
            sanic_request = await _sanic_request(request, parameters)
            exchange = _Exchange(request)
            token = _EXCHANGE.set(exchange)
            try:
                try:
                    answer = handler(sanic_request, **parameters)
                    if inspect.isawaitable(answer):
                        answer = await answer
                except Exception as exc:
                    if exchange.failure is not None:
                        raise exchange.failure from None
                    raise _json_error_of(exc, sanic_request) or exc from None
                if exchange.failure is not None:  # the connector caught it: still the answer
                    raise exchange.failure
                return await _aiohttp_response(answer, request)  # a stream runs turns too
            finally:
                _EXCHANGE.reset(token)

        return serve

    async def _on_new_message(self, message: Any) -> None:
        """Rasa's ``on_new_message``: the turn, then the bot's messages to the message's output
        channel. A failure is kept as the request's answer (and raised to the connector)."""
        exchange = _EXCHANGE.get()
        try:
            await self._handle(message, exchange)
        except Exception as exc:
            if exchange is not None and exchange.failure is None:
                exchange.failure = exc
            raise

    async def _handle(self, message: Any, exchange: _Exchange | None) -> None:
        text, sender = getattr(message, "text", None), getattr(message, "sender_id", None)
        if not isinstance(text, str):
            raise json_error(
                400, f"{self.name}: the message has no text (got {type(text).__name__})"
            )
        sender = str(sender) if sender is not None else "default"
        problem = conversation_id_problem(sender)
        if problem is not None:
            raise json_error(400, f"{self.name}: the sender id: {problem}")
        channel = getattr(message, "input_channel", None) or self.name
        if not isinstance(channel, str):
            raise json_error(
                400, f"{self.name}: the input channel must be a string, not {kind(channel)}"
            )
        metadata = getattr(message, "metadata", None)
        ours = UserMessage(text, sender, channel, metadata if isinstance(metadata, dict) else {})
        message_id = getattr(message, "message_id", None)
        if message_id is not None:  # else a new one, as Rasa gives every message
            ours = replace(ours, message_id=str(message_id))
        gate = self._app[GATE]
        client = None
        if exchange is not None:  # else a task of the connector's own, outside any request
            reply_to(exchange.request, sender)
            client = gate.client_of(exchange.request)
        answer = await gate.handle(ours, client=client)
        output = getattr(message, "output_channel", None)
        if output is None:
            return
        for bot_message in answer:
            recipient = bot_message.get("recipient_id", sender)
            await output.send_response(
                recipient, {k: v for k, v in bot_message.items() if k != "recipient_id"}
            )


def _overrides(cls: type, method: str) -> bool:
    """Whether ``cls`` defines ``method`` itself, rather than inheriting Rasa's base class's."""
    for klass in cls.__mro__:
        if method in vars(klass):
            where = klass.__module__
            return not where.startswith(("connectors.rasa_compat", "rasa.core.channels.channel"))
    return False


def bridged(connector_class: type) -> type[SanicChannel]:
    """Our channel class for a Rasa connector class; a ConfigError where its ``name()`` is not a
    usable name."""
    try:
        name = connector_class.name()  # type: ignore[attr-defined]
    except Exception as exc:
        raise ConfigError(
            f"the Rasa connector {connector_class.__name__}'s name() failed: {exc!r}"
        ) from None
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(
            f"the Rasa connector {connector_class.__name__}'s name() must be a non-empty string "
            f"without '/', not {name!r}"
        )
    return type(
        f"Sanic{connector_class.__name__}",
        (SanicChannel,),
        {"connector_class": connector_class, "name": name, "__module__": __name__},
    )
