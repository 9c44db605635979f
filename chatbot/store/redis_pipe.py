"""One Redis connection on which the lock store's scripts are pipelined.

redis-py's asyncio client spends about 100 us of CPU on a call (its connection pool, a task and a
timeout per command, its retry wrapper): two calls a message made a Redis lock cost a server a
third of its throughput. Redis answers a connection's commands in the order it reads them, so one
connection can carry every task's commands at once: each call writes its command and waits for
its answer in a queue, and the replies, parsed by hiredis, are handed out in order. About 20 us
a call alone, less when calls overlap.

A caller that is cancelled while its answer is on the way leaves the connection as it is (the
answer is read and dropped), unlike a redis-py call cut off halfway. A lost connection fails
every call on it (the command may or may not have run) and the next call connects again; a
connection that answers nothing for ``socket_timeout`` is given up. Plain TCP and unix sockets
only: TLS (``rediss://``) stays with redis-py (``RedisPipe.for_url`` says None).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

from chatbot.errors import StoreUnavailable

logger = logging.getLogger(__name__)

# Options of the lock store's blocks (chatbot.store.factory.redis_url) the pipe reads; any other
# (TLS files, redis-py's own options) leaves the lock store on redis-py.
_OPTIONS = frozenset(
    {"username", "password", "socket_timeout", "socket_connect_timeout", "health_check_interval"}
)
HEALTH_CHECK_INTERVAL = 30.0  # seconds idle after which a connection is PINGed before use
_CONNECT_TRIES = 3  # as redis-py's two retries: a blip is ridden out, a Redis that is down not
_CONNECT_PAUSE = 0.02


class ReplyError(Exception):
    """Redis answered the command with an error."""


class ConnectionLost(StoreUnavailable):
    """The connection went away before the answer came: the command may or may not have run."""


class Script:
    """A Lua script, called by its SHA-1 (EVALSHA), sent whole (EVAL) where Redis lacks it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def _pack(args: Sequence[str | int | bytes]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """The connection: commands written as they come, answers handed out in their order."""

    def __init__(self, where: str, timeout: float | None) -> None:
        self._where = where
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.lost: str | None = None  # why the connection is gone
        self.used = time.monotonic()  # when it last sent or answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send(self, args: Sequence[str | int | bytes]) -> asyncio.Future[Any]:
        if self.lost is not None or self._transport is None or self._transport.is_closing():
            raise StoreUnavailable(f"{self._where}: {self.lost or 'connection closed'}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.used = now = time.monotonic()
        self._waiting.append((future, now))
        self._transport.write(_pack(args))
        if self._timer is None and self._timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._check)
        return future

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as error:
                self._give_up(f"unreadable answer ({error})")
                return
            if reply is False:
                self.used = time.monotonic()
                return
            if not self._waiting:
                self._give_up("an answer to no command")
                return
            future, _ = self._waiting.popleft()
            if future.done():  # its caller was cancelled: the answer is dropped
                continue
            if isinstance(reply, ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(self.lost or (str(exc) if exc else "connection closed by the server"))

    def _check(self) -> None:
        """The oldest command has had ``socket_timeout`` for its answer: the connection is
        given up; else wait for its turn."""
        self._timer = None
        if not self._waiting or self._timeout is None:
            return
        waited = time.monotonic() - self._waiting[0][1]
        if waited >= self._timeout:
            self._give_up(f"no answer in {self._timeout:g} s")
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._timeout - waited, self._check)

    def _give_up(self, why: str) -> None:
        self._fail(why, lost=False)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, why: str, *, lost: bool = True) -> None:
        """Every call waiting fails: ``ConnectionLost`` where the connection went away,
        ``StoreUnavailable`` where it was given up (no answer in time, an unreadable one)."""
        if self.lost is None:
            self.lost = why
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        kind = ConnectionLost if lost else StoreUnavailable
        error = kind(f"{self._where}: {self.lost}")
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        self._fail("connection closed", lost=False)
        if self._transport is not None:
            self._transport.close()


class RedisPipe:
    """Commands and scripts on one connection to the Redis at ``url`` (``redis://`` or
    ``unix://``), made on first use and again after it is lost. Errors are ``StoreUnavailable``
    naming ``what`` and where (never the password), error replies ``ReplyError``."""

    def __init__(self, url: str, options: Mapping[str, Any], what: str) -> None:
        parts = urlsplit(url)
        self._path = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 6379
        database = parts.path.lstrip("/") if parts.scheme != "unix" else ""
        self._db = int(database or 0)
        username = options.get("username", unquote(parts.username) if parts.username else None)
        password = options.get("password", unquote(parts.password) if parts.password else None)
        self._auth = [str(x) for x in (username, password) if x is not None] if password else []
        self._timeout: float | None = options.get("socket_timeout", 10.0)
        self._connect_timeout = float(options.get("socket_connect_timeout", 5.0))
        self._check_after = float(options.get("health_check_interval", HEALTH_CHECK_INTERVAL))
        where = self._path or f"{self._host}:{self._port}/{self._db}"
        self._where = f"{what} unavailable (redis at {where})"
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    @classmethod
    def for_url(cls, url: str, options: Mapping[str, Any], what: str) -> RedisPipe | None:
        """A pipe to ``url``, or None where the client must be redis-py's (TLS, other
        options)."""
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "unix") or set(options) - _OPTIONS:
            return None
        return cls(url, options, what)

    async def call(self, *args: str | int | bytes, again: bool = False) -> Any:
        """The answer to a command. ``again``: the command may run twice (it changes nothing,
        or nothing more), so it is sent once more on a new connection where the first one went
        away before its answer came."""
        try:
            return await (await self._connected()).send(args)
        except ConnectionLost:
            if not again:
                raise
        return await (await self._connected()).send(args)

    async def script(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str | int],
        again: Sequence[str | int] | None = None,
    ) -> Any:
        """Run ``script`` (EVALSHA; EVAL where Redis lacks it, after a restart). ``again``: the
        arguments to run it with once more, on a new connection, where the first one went away
        before its answer came (the script must be written so that the second run is safe)."""
        try:
            return await self._script(script, keys, args)
        except ConnectionLost:
            if again is None:
                raise
        return await self._script(script, keys, again)

    async def _script(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        connection = await self._connected()
        try:
            return await connection.send(("EVALSHA", script.sha, len(keys), *keys, *args))
        except ReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        connection = await self._connected()
        return await connection.send(("EVAL", script.source, len(keys), *keys, *args))

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.lost is None:
            if time.monotonic() - connection.used < self._check_after:
                return connection
            # Idle for a while (a firewall may have dropped it unnoticed): a PING first, which
            # may safely be lost, as redis-py's health check.
            try:
                await connection.send(("PING",))
                return connection
            except ConnectionLost:
                pass
        if self._connecting is None:  # one connection made for every caller waiting for it
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        return await asyncio.shield(self._connecting)

    def _connect_done(self, connecting: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if not connecting.cancelled():
            connecting.exception()  # retrieved: its callers (if any are left) raise it

    async def _connect(self) -> _Connection:
        pause = _CONNECT_PAUSE
        for attempt in range(_CONNECT_TRIES):
            try:
                self._connection = await asyncio.wait_for(self._open(), self._connect_timeout)
                return self._connection
            except (OSError, asyncio.TimeoutError) as error:
                if attempt == _CONNECT_TRIES - 1:
                    reason = str(error).strip() or type(error).__name__
                    raise StoreUnavailable(f"{self._where}: {reason}") from None
            await asyncio.sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(self._where, self._timeout)

        if self._path is not None:
            _, connection = await loop.create_unix_connection(protocol, self._path)
        else:
            _, connection = await loop.create_connection(protocol, self._host, self._port)
        try:
            if self._auth:
                await connection.send(("AUTH", *self._auth))
            if self._db:
                await connection.send(("SELECT", self._db))
        except ReplyError as error:
            connection.close()
            raise StoreUnavailable(f"{self._where}: {error}") from None
        except BaseException:
            connection.close()
            raise
        return connection

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
