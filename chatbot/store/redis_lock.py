"""RedisLockStore: conversation locks shared by every process that uses one Redis.

Three keys per conversation (``<prefix><conversation id>:...``):

``:counter``
    INCR hands out the conversation's ticket numbers.
``:queue``
    a sorted set of the tickets waiting or holding, scored by ticket number; the lowest one holds
    the lock. A ticket is ``<number>:<random token>``, unique, so a late release of an expired
    ticket never releases anybody else's.
``:deadlines``
    a hash ticket -> Redis time (ms) until which that ticket is alive. A waiter renews its own on
    every poll; a holder's is set to ``lock_lifetime`` when it takes the lock. A head whose
    deadline has passed (a crashed or hung holder, a waiter that died) is dropped by the next
    waiter's poll, which then moves up.

Each step is one Lua script, so it is atomic; times come from Redis (``TIME``), so the clocks of
the processes do not matter. Waiters poll, the next in line every few ms and those behind it
less often, which keeps a hand-over within a few ms without a pub/sub connection. The keys
expire after twice the lifetime without activity, so idle conversations leave nothing behind.

A waiter cancelled while its ticket is being taken (one round trip) may leave that ticket in
the queue; it is dropped when its lifetime runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from chatbot.errors import LockTimeout, StoreUnavailable
from chatbot.store.locks import (
    DEFAULT_LOCK_LIFETIME,
    DEFAULT_WAIT_TIMEOUT,
    LockStore,
    Ticket,
)
from chatbot.store.redis_client import call, describe, redis_client
from chatbot.store.redis_pipe import RedisPipe, ReplyError, Script

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "chatbot:lock:"

# Shared by the two waiting scripts. KEYS: counter, queue, deadlines.
# ARGV[1] the ticket, ARGV[2] lifetime (ms), ARGV[3] key TTL (ms).
# poll() answers {state, dropped, place}: state 1 when the ticket holds the lock, 0 while it
# waits (place: how many tickets are ahead of it) and -1 when the ticket is gone (it expired while
# its process was stalled); dropped counts the expired heads it removed.
_LUA_POLL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function poll(ticket)
  if not redis.call('ZSCORE', KEYS[2], ticket) then return {-1, 0, -1} end
  local dropped = 0
  while true do
    local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    local state = nil
    if head == ticket then
      state = 1
    else
      local deadline = tonumber(redis.call('HGET', KEYS[3], head))
      if deadline and deadline > now then state = 0 end
    end
    if state then
      redis.call('HSET', KEYS[3], ticket, now + tonumber(ARGV[2]))
      for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
      return {state, dropped, redis.call('ZRANK', KEYS[2], ticket)}
    end
    redis.call('ZREM', KEYS[2], head)
    redis.call('HDEL', KEYS[3], head)
    dropped = dropped + 1
  end
end
"""

# Take a ticket (ARGV[1] is its random token) and poll once: {state, dropped, place, ticket}.
# ARGV[4] '1': a second run, the connection of the first having gone before its answer came: a
# ticket with this token that the first run took is kept, not taken twice.
_LUA_ENQUEUE = (
    _LUA_POLL
    + """
local ticket = nil
if ARGV[4] == '1' then
  local suffix = ':' .. ARGV[1]
  for _, queued in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if string.sub(queued, -string.len(suffix)) == suffix then ticket = queued end
  end
end
if not ticket then
  local number = redis.call('INCR', KEYS[1])
  ticket = number .. ':' .. ARGV[1]
  redis.call('ZADD', KEYS[2], number, ticket)
end
local answer = poll(ticket)
table.insert(answer, ticket)
return answer
"""
)

_LUA_WAIT = _LUA_POLL + "\nreturn poll(ARGV[1])\n"

# KEYS: queue, deadlines; ARGV[1] the ticket. 1: it held the lock, 0: it was waiting,
# -1: it had expired already; 2: it is gone on a second run (ARGV[2] '1'), which the first
# may have done.
_LUA_RELEASE = """
local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  if ARGV[2] == '1' then return 2 end
  return -1
end
redis.call('HDEL', KEYS[2], ARGV[1])
if head == ARGV[1] then return 1 end
return 0
"""

# A waiter polls after 1 ms, then backs off to 5 ms times its place in the queue (at most 50 ms):
# the next in line notices a release within 5 ms, and a long queue costs Redis little.
_FIRST_POLL_INTERVAL = 0.001
_POLL_INTERVAL_PER_PLACE = 0.005
_MAX_POLL_INTERVAL = 0.05


# A script's call: (keys, args, the args of a second run after a lost connection).
_Run = Callable[[Sequence[str], Sequence[str | int], Sequence[str | int]], Awaitable[Any]]


class RedisLockStore(LockStore):
    """Ticket locks in Redis at ``url`` (``redis://[:password@]host:port/db``).

    ``client_options`` go to ``redis.asyncio.Redis.from_url`` (password, ssl, timeouts, ...).
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/1",
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        lock_lifetime: float = DEFAULT_LOCK_LIFETIME,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if lock_lifetime <= 0:
            raise ValueError(f"lock_lifetime must be positive, not {lock_lifetime!r}")
        self.key_prefix = key_prefix
        self.lock_lifetime = lock_lifetime
        self.wait_timeout = wait_timeout
        self._client = redis_client(url, client_options)
        self._lifetime_ms = max(1, round(lock_lifetime * 1000))
        self._key_ttl_ms = 2 * self._lifetime_ms + 1000
        # The scripts go through one pipelined connection (a fifth of redis-py's CPU a call),
        # or through redis-py where the pipe does not speak the client's options (TLS).
        self._pipe = RedisPipe.for_url(url, client_options or {}, "lock store")
        self._enqueue = self._script(_LUA_ENQUEUE)
        self._wait = self._script(_LUA_WAIT)
        self._release = self._script(_LUA_RELEASE)

    def _script(self, source: str) -> _Run:
        """The script as a call ``(keys, args, again)``: ``again`` the arguments of a second
        run where the pipe's connection went away before the first's answer came (redis-py
        retries its own way)."""
        pipe = self._pipe
        if pipe is None:
            registered = self._client.register_script(source)

            def by_redis_py(
                keys: Sequence[str], args: Sequence[str | int], again: Sequence[str | int]
            ) -> Awaitable[Any]:
                return registered(keys=keys, args=args)

            return by_redis_py
        script = Script(source)

        def run(
            keys: Sequence[str], args: Sequence[str | int], again: Sequence[str | int]
        ) -> Awaitable[Any]:
            return pipe.script(script, keys, args, again)

        return run

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for other keys that several processes share (e.g. channels' delivery
        deduplication, under ``key_prefix``)."""
        return self._client

    def describe(self) -> str:
        return describe(self._client)

    def _keys(self, conversation_id: str) -> list[str]:
        base = f"{self.key_prefix}{conversation_id}"
        return [f"{base}:counter", f"{base}:queue", f"{base}:deadlines"]

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await call(self._client, awaitable, "lock store")
        except ReplyError as error:  # the pipe's (redis-py's are RedisErrors, mapped by call)
            raise StoreUnavailable(f"lock store error ({self.describe()}): {error}") from None

    async def acquire(self, conversation_id: str) -> Ticket:
        loop = asyncio.get_running_loop()
        keys = self._keys(conversation_id)
        started = loop.time()
        give_up = started + self.wait_timeout
        state, dropped, place, ticket = await self._enqueue_ticket(keys)
        delay = _FIRST_POLL_INTERVAL
        try:
            while True:
                if dropped:
                    logger.warning(
                        "conversation %s: %d lock ticket(s) outlived the lifetime of %s s and "
                        "were dropped (a crashed or hung holder)",
                        conversation_id,
                        dropped,
                        self.lock_lifetime,
                    )
                if state == 1:
                    return ticket
                if state == -1:
                    # Our own ticket expired: this process stalled for a whole lifetime.
                    logger.warning(
                        "conversation %s: a waiting lock ticket expired; queueing again",
                        conversation_id,
                    )
                    state, dropped, place, ticket = await self._enqueue_ticket(keys)
                    continue
                now = loop.time()
                if now >= give_up:
                    raise LockTimeout(conversation_id, now - started)
                await asyncio.sleep(min(delay, give_up - now))
                delay = min(delay * 2, _POLL_INTERVAL_PER_PLACE * place, _MAX_POLL_INTERVAL)
                args: list[str | int] = [ticket, self._lifetime_ms, self._key_ttl_ms]
                state, dropped, place = await self._whole(self._wait(keys, args, args))
        except BaseException:
            # Timed out, cancelled or Redis went away: leave the queue (or let the ticket expire
            # when Redis cannot be told).
            with contextlib.suppress(StoreUnavailable):
                await self._whole(self._release(keys[1:], [ticket], [ticket, 1]))
            raise

    async def _whole(
        self,
        awaitable: Awaitable[Any],
        cancelled: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> Any:
        """A Redis call that a cancellation does not cut off halfway (which would leave its
        connection to be dropped, and the release that follows it to fail on a pool in
        disarray): the call runs to its answer, ``cancelled`` (if given) is called with that
        answer, then the cancellation goes on."""
        running = asyncio.ensure_future(self._call(awaitable))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # Redis away: a ticket expires by itself
                answer = await running
                if cancelled is not None:
                    await cancelled(answer)
            raise

    async def _enqueue_ticket(self, keys: list[str]) -> tuple[int, int, int, str]:
        """Join the conversation's queue: (state, dropped, place, the ticket). The ticket's
        number comes from Redis, so a cancellation while its answer is on the way would leave a
        ticket nobody releases, holding up the conversation for a whole lock lifetime: the call
        runs on, and its ticket leaves the queue before the cancellation goes on."""
        args: list[str | int] = [uuid.uuid4().hex, self._lifetime_ms, self._key_ttl_ms]

        async def leave(answer: Any) -> None:
            ticket = _text(answer[-1])
            await self._call(self._release(keys[1:], [ticket], [ticket, 1]))

        state, dropped, place, raw = await self._whole(
            self._enqueue(keys, args, [*args, 1]), cancelled=leave
        )
        return int(state), int(dropped), int(place), _text(raw)

    async def release(self, conversation_id: str, ticket: Ticket) -> None:
        keys = self._keys(conversation_id)[1:]
        # Run to its answer even when the message is cancelled meanwhile (a shutdown): a release
        # cut off halfway may leave the ticket holding the conversation for its whole lifetime.
        released = await self._whole(self._release(keys, [str(ticket)], [str(ticket), 1]))
        if released == -1:
            logger.warning(
                "conversation %s: lock released after its lifetime of %s s ran out; another "
                "message may have been handled meanwhile",
                conversation_id,
                self.lock_lifetime,
            )

    async def queue_length(self, conversation_id: str) -> int:
        key = self._keys(conversation_id)[1]
        if self._pipe is not None:
            return int(await self._call(self._pipe.call("ZCARD", key, again=True)))
        return int(await self._call(self._client.zcard(key)))

    async def start(self) -> None:
        """A PING on the locks' connection: Redis down, a wrong password or a refused TLS
        handshake is a StoreUnavailable saying so, before the first message fails on it."""
        if self._pipe is not None:
            await self._call(self._pipe.call("PING", again=True))
        else:
            await self._call(self._client.ping())

    async def ping(self) -> bool:
        try:
            if self._pipe is not None:
                return bool(await self._call(self._pipe.call("PING", again=True)))
            return bool(await self._call(self._client.ping()))
        except StoreUnavailable as error:
            logger.warning("%s", error)
            return False

    async def close(self) -> None:
        if self._pipe is not None:
            await self._pipe.close()
        await self._client.aclose()


def _text(raw: Any) -> str:
    """A ticket as Redis answers it (bytes, or text with ``decode_responses``)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
