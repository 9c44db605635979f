"""Rasa's socket.io channel, for rasa-webchat, Rasa's chat widget and our own chat page.

The protocol, as Rasa speaks it:

- ``session_request`` ``{"session_id": <key or null>}`` -> ``session_confirm`` ``<key>``;
- ``user_uttered`` ``{"message": text, "session_id": <key>, <metadata_key>: {...}}`` ->
  ``bot_uttered`` once per bot message: ``{"text"}``, ``{"text", "quick_replies": [{"content_type":
  "text", "title", "payload"}]}``, ``{"attachment": {"type": "image", "payload": {"src"}}}``, other
  attachments, and custom payloads.

Where we differ: a session id is a *signed session key* (``connectors.session_keys``). The key
from ``session_confirm`` is what a client presents in its next ``session_request`` to resume the
conversation; a key the server did not sign starts a new conversation, so guessing or learning a
conversation id gives nobody else's messages. Clients that store the confirmed id and send it back
(rasa-webchat, Rasa's widget) do this unchanged. Messages go to the conversation the socket's
``session_request`` bound, whatever ``session_id`` a ``user_uttered`` carries.

Two additions for our chat page, unused by other clients: ``user_uttered`` answers an ack once
every reply is out (the page's typing indicator), and ``session_history`` (with an ack) returns the
bound conversation's last session as ``[{"sender": "user"|"bot", ...message}]``.

credentials.yml ``socketio:`` keys: ``user_message_evt`` (user_uttered), ``bot_message_evt``
(bot_uttered), ``session_persistence`` (true; Rasa's default is false, which answers each socket
as its own conversation), ``socketio_path`` (/socket.io), ``namespace``, ``metadata_key``
(metadata), ``jwt_key`` / ``jwt_method`` (HS256) to require a JWT in the connect ``auth.token``,
``cors_allowed_origins`` (any origin unless given, as Rasa's; a list of origins restricts) and
``session_secret`` (signs session keys; unless given, one the server makes and keeps in the
project's ``.chatbot/socketio_secret``, so keys survive restarts; several separate servers share
keys only when it is set or the file is the same).

Under ``chatbot run --workers`` the channel takes websockets only (a client's long-polling requests
could reach different workers; our chat page connects so, other clients must be told
``transports: ["websocket"]``), and emits go through socket.io's Redis manager on the lock store's
Redis, so that a message for a conversation reaches its sockets whichever worker holds them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage, bot_messages
from chatbot.errors import ChatbotError, ConfigError
from chatbot.json_input import STRICT_JSON, loads
from chatbot.server.bodies import body_timeout, body_too_slow
from chatbot.server.clients import environ_client
from chatbot.server.errors import json_error
from chatbot.server.keys import GATE, OUTPUTS, SETTINGS
from chatbot.server.settings import ServerSettings
from chatbot.server.worker_sync import shared_secret
from connectors.base import InputChannel
from connectors.delivery import ConversationWorkers
from connectors.session_keys import SessionKeys, kept_secret
from connectors.turns import answer, refusal
from connectors.webchat import CHAT_PAGE_CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A polling POST is awaited whole in the connection's buffer before engine.io reads it; aiohttp
# stops reading a connection whose buffer holds more than twice its 64 KiB read size, so a body
# this large still arrives whole. (A chat message is at most 10,000 characters.)
MAX_POLLING_BODY = 128 * 1024

logger = logging.getLogger(__name__)

HISTORY_EVENT = "session_history"
MAX_HISTORY = 200  # messages a page gets back on reload, newest kept


def socketio_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One bot message (Rasa's REST format) as the ``bot_uttered`` payloads Rasa emits for it.

    Like Rasa, text is split at blank lines and buttons (or quick replies) go with the last part,
    a button without a payload sending its title; buttons without a text come with an empty
    one. A custom payload is emitted as is (its ``data`` when it has one, as Rasa's
    ``emit(**custom)``).
    """
    out: list[dict[str, Any]] = []
    text = message.get("text")
    buttons = message.get("buttons") or message.get("quick_replies") or []
    if isinstance(text, str) or buttons:
        text = text if isinstance(text, str) else ""
        parts = [part for part in text.strip().split("\n\n") if part] or [text]
        texts: list[dict[str, Any]] = [{"text": part} for part in parts]
        if buttons:
            texts[-1]["quick_replies"] = [
                {
                    "content_type": "text",
                    "title": str(button.get("title", "")),
                    "payload": str(button.get("payload", button.get("title", ""))),
                }
                for button in buttons
                if isinstance(button, dict)
            ]
        out.extend(texts)
    if message.get("image"):
        out.append({"attachment": {"type": "image", "payload": {"src": message["image"]}}})
    if message.get("attachment"):
        out.append({"attachment": message["attachment"]})
    if message.get("elements"):
        out.append(
            {
                "attachment": {
                    "type": "template",
                    "payload": {"template_type": "generic", "elements": message["elements"]},
                }
            }
        )
    custom = message.get("custom")
    if custom:
        out.append(custom["data"] if isinstance(custom, dict) and "data" in custom else custom)
    return out


def history_messages(events: list[dict[str, Any]], conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's user and bot messages as the page shows them, the last MAX_HISTORY.

    A user message that is a button's payload shows as the button's title, as when it was clicked.
    """
    shown: list[dict[str, Any]] = []
    titles: dict[str, str] = {}  # payload -> title of the buttons offered last
    for event in events:
        kind = event.get("event")
        if kind == "user" and isinstance(event.get("text"), str):
            text = event["text"]
            shown.append({"sender": "user", "text": titles.get(text, text)})
            titles = {}
        elif kind == "bot":
            for message in bot_messages([event], conversation_id):
                for button in message.get("buttons") or message.get("quick_replies") or []:
                    if isinstance(button, dict) and "payload" in button:
                        titles[str(button["payload"])] = str(button.get("title", ""))
                shown.extend({"sender": "bot", **m} for m in socketio_messages(message))
    return shown[-MAX_HISTORY:]


def _cors(value: object) -> str | list[str]:
    """ "*" (any origin: not given, or an empty list, as Rasa's socket server takes any) or a
    list of origins. No origin check protects anything here: a conversation is reached only by
    the session key the server signed, which a page of another origin cannot read."""
    if value is None or value == [] or value == "" or value == "*":
        return "*"
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "*" if "*" in value else list(value)
    raise ConfigError(
        f"socketio: 'cors_allowed_origins' must be '*', an origin or a list "
        f"of origins (like https://shop.example.com), not {value!r}"
    )


class SocketIOChannel(InputChannel):
    name = "socketio"

    def __init__(
        self,
        *,
        user_message_evt: str = "user_uttered",
        bot_message_evt: str = "bot_uttered",
        session_persistence: bool = True,
        socketio_path: str = "/socket.io",
        namespace: str | None = None,
        metadata_key: str = "metadata",
        jwt_key: str | None = None,
        jwt_method: str = "HS256",
        cors_allowed_origins: object = None,
        session_secret: str | None = None,
    ) -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.session_persistence = session_persistence
        self.socketio_path = "/" + socketio_path.strip("/")
        self.namespace = namespace or "/"
        self.metadata_key = metadata_key
        self.jwt_key = jwt_key
        self.jwt_method = jwt_method
        self.cors_allowed_origins = _cors(cors_allowed_origins)
        self.keys = SessionKeys(session_secret)
        self._own_keys = session_secret is None
        self.workers = ConversationWorkers("socketio")
        self._bound: dict[str, tuple[str, str]] = {}  # socket id -> (conversation id, key)
        self._clients: dict[str, str] = {}  # socket id -> its client's address
        self.sio: socketio.AsyncServer | None = None

    @web.middleware
    async def _body_deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """engine.io reads a polling POST's body itself, without a deadline: the body is awaited
        here first (in the connection's buffer, not read out), within the server's
        ``body_timeout`` (a 408 after it); a larger body or one of unknown length is a 413."""
        path = request.path.rstrip("/")
        if request.body_exists and (path == self.socketio_path.rstrip("/")):
            settings = request.app.get(SETTINGS)
            most = min(MAX_POLLING_BODY, settings.max_body_bytes if settings else MAX_POLLING_BODY)
            length = request.content_length
            if length is None or length > most:
                message = f"socket.io bodies are at most {most} bytes, with their length"
                raise json_error(413, message)
            if not request.content.is_eof():
                seconds = body_timeout(request)
                try:
                    await asyncio.wait_for(request.content.wait_eof(), seconds)
                except asyncio.TimeoutError:
                    raise body_too_slow(seconds) from None
        return await handler(request)

    @classmethod
    def from_credentials(cls, params: dict[str, Any]) -> SocketIOChannel:
        params = dict(params or {})
        known = {
            "user_message_evt",
            "bot_message_evt",
            "session_persistence",
            "socketio_path",
            "namespace",
            "metadata_key",
            "jwt_key",
            "jwt_method",
            "cors_allowed_origins",
            "session_secret",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"socketio: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for key in ("user_message_evt", "bot_message_evt", "socketio_path", "metadata_key"):
            if key in params and (not isinstance(params[key], str) or not params[key]):
                raise ConfigError(
                    f"socketio: '{key}' must be a non-empty string, not {params[key]!r}"
                )
        if not isinstance(params.get("session_persistence", True), bool):
            raise ConfigError(
                "socketio: 'session_persistence' must be true or false, not "
                f"{params['session_persistence']!r}"
            )
        secret = params.get("session_secret")
        if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
            raise ConfigError(
                "socketio: 'session_secret' must be a string of at least 16 "
                "characters (e.g. from `python -c 'import secrets; print(secrets.token_hex())'`)"
            )
        return cls(**params)

    def entry(self) -> str:
        return f"socket.io: {self.socketio_path}"

    def register(self, app: web.Application, agent_getter: Callable[[], Agent]) -> None:
        settings = app.get(SETTINGS)
        workers: dict[str, Any] = {}
        kept = None
        if settings is not None and self._own_keys and _is_project(settings.project_dir):
            kept = kept_secret(settings.project_dir / ".chatbot")
        if kept is not None:
            self.keys = SessionKeys(kept)
        if settings is not None and settings.worker is not None:
            # `chatbot run --workers`: a client's long-polling requests could reach different
            # workers, a websocket stays with one; emits to a conversation on another worker's
            # socket go through Redis; a session key one worker gave is good for all.
            workers["transports"] = ["websocket"]
            workers["client_manager"] = _shared_manager(settings)
            own = self._own_keys and kept is None
            shared = shared_secret(app, "socketio-session") if own else None
            if shared is not None:
                self.keys = SessionKeys(shared)
        sio = _Server(
            async_mode="aiohttp",
            serializer=_Packet,
            cors_allowed_origins=self.cors_allowed_origins,
            logger=False,
            engineio_logger=False,
            **{k: v for k, v in workers.items() if v is not None},
        )
        self.sio = sio
        sio.attach(app, socketio_path=self.socketio_path)
        app.middlewares.append(self._body_deadline)
        self._add_handlers(sio, app, agent_getter)
        app[CHAT_PAGE_CONFIG] = {
            "socketio-path": self.socketio_path,
            "namespace": self.namespace,
            "user-event": self.user_message_evt,
            "bot-event": self.bot_message_evt,
            **({"transports": "websocket"} if workers else {}),
        }

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def stop_workers(app: web.Application) -> None:
            # on_shutdown runs before every cleanup_ctx exit, so replies finish while the
            # agent's store is still open; the sockets close so the server need not wait.
            await self.workers.close()
            await _close_connections(sio)
            await sio.shutdown()

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            yield
            await self.workers.close(grace=0)

        app.router.add_get(f"/webhooks/{self.name}/", health)
        app.on_shutdown.append(stop_workers)
        app.cleanup_ctx.append(lifecycle)

        async def send(
            conversation_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]
        ) -> None:
            """Bot messages outside a request (a reminder): to the conversation's sockets (its
            room; without session persistence the conversation is the socket's own id)."""
            for message in messages:
                for payload in socketio_messages(message):
                    event, space = self.bot_message_evt, self.namespace
                    await sio.emit(event, payload, room=conversation_id, namespace=space)

        app[OUTPUTS][self.name] = send

    def _add_handlers(
        self, sio: socketio.AsyncServer, app: web.Application, agent_getter: Callable[[], Agent]
    ) -> None:
        namespace = self.namespace

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
            if self.jwt_key is not None and not self._jwt_ok(auth):
                return False
            gate = app[GATE]
            client = (
                environ_client(environ, gate.proxies) if gate.client_limiter is not None else None
            )
            if client is not None:
                self._clients[sid] = client
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str, *args: Any) -> None:
            self._bound.pop(sid, None)
            self._clients.pop(sid, None)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            presented = data.get("session_id") if isinstance(data, dict) else None
            conversation_id = self.keys.conversation_of(presented)
            if conversation_id is not None and isinstance(presented, str):
                key = presented
            else:
                if presented:
                    logger.debug("socketio: a session key that we did not sign; a new session")
                conversation_id, key = self.keys.issue()
            if not self.session_persistence:
                conversation_id = sid
            previous = self._bound.get(sid)
            self._bound[sid] = (conversation_id, key)
            if self.session_persistence:
                if previous is not None and previous[0] != conversation_id:
                    await sio.leave_room(sid, previous[0], namespace=namespace)
                await sio.enter_room(sid, conversation_id, namespace=namespace)
            await sio.emit("session_confirm", key, to=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def user_uttered(sid: str, data: Any = None) -> dict[str, Any]:
            return await self._user_uttered(sio, app, sid, data)

        @sio.on(HISTORY_EVENT, namespace=namespace)
        async def session_history(sid: str, data: Any = None) -> list[dict[str, Any]]:
            bound = self._bound.get(sid)
            if bound is None or not self.session_persistence:
                return []
            try:
                stored = await agent_getter().store.load(bound[0])
            except ChatbotError as error:  # the store is down: the page starts empty
                logger.error("socketio: no history for a conversation: %s", error)
                return []
            return history_messages(stored.events, bound[0])

    async def _user_uttered(
        self, sio: socketio.AsyncServer, app: web.Application, sid: str, data: Any
    ) -> dict[str, Any]:
        text = data.get("message") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            return {"ok": False, "error": "'message' must be a non-empty text"}
        bound = self._bound.get(sid)
        # Before any session_request (a client that sends none): the socket's own conversation,
        # as without session persistence (Rasa ignores such a message when persistence is on).
        conversation_id = bound[0] if bound is not None else sid
        refused = refusal(app, conversation_id, text, self._clients.get(sid))
        if refused is not None:
            return {"ok": False, "error": refused}
        metadata = _metadata(data.get(self.metadata_key))
        message = UserMessage(text, conversation_id, self.name, metadata)
        target = conversation_id if self.session_persistence else sid

        async def reply() -> None:
            for bot_message in await answer(app, message):
                for payload in socketio_messages(bot_message):
                    await sio.emit(
                        self.bot_message_evt, payload, room=target, namespace=self.namespace
                    )

        try:
            await self.workers.run(conversation_id, reply)
        except RuntimeError as error:  # the conversation's queue is full, or we are stopping
            logger.warning("socketio: a message was not answered: %s", error)
            return {"ok": False, "error": "the bot is busy, try again"}
        return {"ok": True}

    def _jwt_ok(self, auth: Any) -> bool:
        import jwt

        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token.isascii():  # a JWT is base64url and dots
            return False
        if self.jwt_key is None:
            return False
        if token.startswith("Bearer "):
            token = token[len("Bearer ") :]
        try:
            jwt.decode(token, self.jwt_key, algorithms=[self.jwt_method])
        except jwt.PyJWTError:
            logger.debug("socketio: a connection with an invalid JWT was refused")
            return False
        return True


def _shared_manager(settings: ServerSettings) -> socketio.AsyncRedisManager | None:
    """socket.io's Redis client manager on the lock store's Redis (which ``--workers`` needs),
    its channel named by the lock store's ``key_prefix``: emits reach the conversation's sockets
    whichever worker holds them."""
    from chatbot.server.app import read_endpoints
    from chatbot.store.factory import redis_url

    block = read_endpoints(settings.project_dir, settings.endpoints_path).lock_store
    if block is None or str(block.type).lower() not in ("redis", "redislockstore"):
        return None
    url, options = redis_url(block)
    prefix = block.params.get("key_prefix") or "chatbot"
    return socketio.AsyncRedisManager(url, channel=f"{prefix}:socketio", redis_options=options)


async def _close_connections(sio: socketio.AsyncServer) -> None:
    """Close every client connection now: open websockets and long polls would hold the
    server's shutdown up to its timeout. Engine.IO closes a socket by telling the client and
    waiting for the client to hang up (its ``disconnect()`` even waits forever for one that is
    already leaving); here each socket is told, and its writer is stopped so that the server
    ends the websocket or the poll itself."""
    for socket in list(sio.eio.sockets.values()):
        await socket.close(wait=False)  # sends CLOSE, fires our disconnect handler
        socket.queue.put_nowait(None)  # the writer (or the pending poll) ends and hangs up


class _Packet(socketio.packet.Packet):
    """socket.io packets whose JSON is read as JSON from outside is (``chatbot.json_input``):
    a NaN or a nesting too deep is a malformed packet, not a value to store; so is what
    python-socketio would fail on further in (an empty packet, an event without a name, an
    ack whose arguments are no list). Each is a ValueError as the packet is read."""

    json = STRICT_JSON

    def __init__(self, *args: Any, encoded_packet: Any = None, **kwargs: Any) -> None:
        if encoded_packet is not None and not encoded_packet:
            raise ValueError("an empty packet")  # python-socketio reads it as an empty event
        super().__init__(*args, encoded_packet=encoded_packet, **kwargs)

    def decode(self, encoded_packet: Any) -> int:
        attachments = int(super().decode(encoded_packet) or 0)
        problem = _socketio_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return attachments


def _engineio_problem(frame: str | bytes) -> str | None:
    """Why a websocket frame is no Engine.IO v4 packet (None where it is one): python-engineio
    would log a traceback for it, or end the connection with one."""
    if isinstance(frame, bytes):
        return None  # a binary message
    if not frame:
        return "an empty frame"
    if frame[0] == "b":  # a binary message in base64, read as python-engineio reads it
        try:
            base64.b64decode(frame[1:])
        except ValueError:
            return "a binary message that is not base64"
        return None
    if frame[0] not in _ENGINEIO_TYPES:
        return "no Engine.IO packet type"
    return None


_ENGINEIO_TYPES = frozenset("0123456")  # open, close, ping, pong, message, upgrade, noop


class _CheckedWebSocket(engineio_aiohttp.WebSocket):
    """python-engineio's aiohttp websocket, whose frames that are no Engine.IO packet are
    dropped with one line instead of reaching python-engineio."""

    async def wait(self) -> str | bytes:
        while True:
            frame: str | bytes = await super().wait()
            problem = _engineio_problem(frame)
            if problem is None:
                return frame
            logger.warning("socketio: a websocket frame was dropped (%s)", problem)


class _EngineIOClientErrors(logging.Filter):
    """python-engineio logs the exception, traceback and all, when it cannot read a polling
    request's packets (``9`` is no packet type): a client's mistake, so one warning line. Its
    refusal of a socket.io 2 client (Engine.IO 3) says what to do instead."""

    MESSAGES = frozenset({"post request handler error", "Unknown receive error"})
    OLD_CLIENT = "The client is using an unsupported version"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self.OLD_CLIENT):
            record.msg, record.args = (
                "socketio: a client of socket.io 2 (Engine.IO 3: rasa-webchat 1.0.0 or older, "
                "webchat 0.x) was refused, as Rasa 3 refuses it: use rasa-webchat 1.0.1 or "
                "socket.io-client 3 or newer",
                (),
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if record.exc_info and record.msg in self.MESSAGES:
            error = record.exc_info[1]
            record.msg, record.args = (
                "socketio: a malformed packet was dropped (%s: %s)",
                (
                    type(error).__name__,
                    error,
                ),
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_ENGINEIO_ERRORS = _EngineIOClientErrors()


def _socketio_problem(pkt: socketio.packet.Packet) -> str | None:
    """What python-socketio would fail on in a decoded packet: an event without a name, an
    ack whose arguments are no list."""
    data = pkt.data
    if pkt.packet_type in (socketio.packet.EVENT, socketio.packet.BINARY_EVENT):
        named = isinstance(data, list) and bool(data) and isinstance(data[0], str)
        return None if named else "an event without a name"
    if pkt.packet_type in (socketio.packet.ACK, socketio.packet.BINARY_ACK):
        return None if isinstance(data, list) else "an ack without arguments"
    return None


class _Server(socketio.AsyncServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eio.logger.addFilter(_ENGINEIO_ERRORS)  # python-engineio's logger (added once)
        for library_logger in (self.logger, self.eio.logger):
            # Their own stderr handlers print every record a second time beside ours.
            for handler in list(library_logger.handlers):
                if type(handler) is logging.StreamHandler:
                    library_logger.removeHandler(handler)
        drivers = getattr(self.eio, "_async", None)
        if isinstance(drivers, dict) and drivers.get("websocket") is engineio_aiohttp.WebSocket:
            # This server's own copy of python-engineio's aiohttp drivers, with frames checked.
            self.eio._async = {**drivers, "websocket": _CheckedWebSocket}

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """A packet that is not socket.io (its JSON not JSON, an unknown type, an event without
        a name: ``_Packet``'s ValueErrors) is dropped with one line; python-socketio would log
        a traceback for each, so a client could fill the log."""
        try:
            await super()._handle_eio_message(eio_sid, data)
        except ValueError as error:
            logger.warning("socketio: a malformed packet was dropped (%s)", error)


def _is_project(folder: Path) -> bool:
    """Whether ``folder`` is a bot project's (its secret is kept there): an application made
    without a project (embedded, in tests) writes nothing into the working folder."""
    return any((folder / name).exists() for name in ("domain.yml", "domain", "config.yml"))


def _metadata(value: Any) -> dict[str, Any]:
    """The message's metadata: an object, or (as rasa-webchat may send it) its JSON text."""
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
