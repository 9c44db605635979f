"""The lock store's pipelined Redis connection (chatbot.store.redis_pipe), against the real Redis:
many callers on one connection, callers cancelled mid-call, lost and silent connections, scripts
Redis forgot, and the lock store's scripts run twice where a connection went away."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from chatbot.errors import StoreUnavailable
from chatbot.store.redis_lock import RedisLockStore
from chatbot.store.redis_pipe import ConnectionLost, RedisPipe, ReplyError, Script
from tests.services import TcpProxy

pytestmark = pytest.mark.services

WAIT = 5.0


@contextlib.asynccontextmanager
async def pipe_to(url: str, **options: object) -> AsyncIterator[RedisPipe]:
    pipe = RedisPipe(url, options, "lock store")
    try:
        yield pipe
    finally:
        await pipe.close()


@contextlib.asynccontextmanager
async def behind_a_proxy(redis_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """``redis_url``'s Redis through a ``TcpProxy`` the test can cut."""
    target = make_url(redis_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379)
    port = await proxy.start()
    try:
        yield f"redis://127.0.0.1:{port}/{target.database or 0}", proxy
    finally:
        await proxy.stop()


async def test_many_callers_on_one_connection_each_get_their_own_answer(
    redis_url: str, redis_key_prefix: str
) -> None:
    async with pipe_to(redis_url) as pipe:
        answers = await asyncio.gather(*(pipe.call("ECHO", f"answer {i}") for i in range(500)))
        assert answers == [f"answer {i}".encode() for i in range(500)]
        counts = await asyncio.gather(
            *(pipe.call("INCR", f"{redis_key_prefix}n{i % 7}") for i in range(70))
        )
        assert sorted(counts) == sorted(list(range(1, 11)) * 7)
        with pytest.raises(ReplyError, match="WRONGTYPE"):  # an error answer, the pipe goes on
            await pipe.call("LPUSH", f"{redis_key_prefix}n0", "x")
        assert await pipe.call("ECHO", "still in step") == b"still in step"


async def test_a_caller_cancelled_while_its_answer_is_on_the_way_leaves_the_rest_in_step(
    redis_url: str, redis_key_prefix: str
) -> None:
    # BLPOP holds the connection's answers back for 0.3 s; its caller gives up meanwhile. The
    # answer still comes and is dropped, and every later answer reaches its own caller.
    async with pipe_to(redis_url) as pipe:
        blocked = asyncio.ensure_future(pipe.call("BLPOP", f"{redis_key_prefix}empty", "0.3"))
        behind = asyncio.ensure_future(pipe.call("ECHO", "behind it"))
        await asyncio.sleep(0.05)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        assert await asyncio.wait_for(behind, WAIT) == b"behind it"
        assert await pipe.call("ECHO", "after") == b"after"


async def test_a_connection_that_answers_nothing_in_time_is_given_up_and_replaced(
    redis_url: str, redis_key_prefix: str
) -> None:
    async with pipe_to(redis_url, socket_timeout=0.2) as pipe:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"no answer in 0\.2 s") as error:
            await pipe.call("BLPOP", f"{redis_key_prefix}empty", "2", again=True)
        assert not isinstance(error.value, ConnectionLost)  # not sent again: it may hang again
        assert time.monotonic() - started < 1.5
        assert await pipe.call("ECHO", "new connection") == b"new connection"


async def test_a_lost_connection_fails_its_calls_and_the_next_call_connects_again(
    redis_url: str,
) -> None:
    async with behind_a_proxy(redis_url) as (url, proxy), pipe_to(url) as pipe:
        assert await pipe.call("PING") == b"PONG"
        await proxy.stop()
        with pytest.raises(StoreUnavailable, match=r"lock store unavailable \(redis at 127"):
            await pipe.call("PING")
        await proxy.start()
        assert await pipe.call("PING") == b"PONG"


async def test_a_connection_dead_unnoticed_costs_only_calls_that_may_run_twice_nothing(
    redis_url: str,
) -> None:
    async with behind_a_proxy(redis_url) as (url, proxy), pipe_to(url) as pipe:
        assert await pipe.call("PING") == b"PONG"
        await proxy.sever_quietly()
        assert await pipe.call("ECHO", "again", again=True) == b"again"
        await proxy.sever_quietly()
        with pytest.raises(ConnectionLost):
            await pipe.call("ECHO", "once")  # may have run: not sent again
        assert await pipe.call("ECHO", "next") == b"next"


async def test_an_idle_connection_is_checked_before_use(redis_url: str) -> None:
    # Idle past health_check_interval (a firewall may have dropped it): a PING goes first, and
    # its loss costs the command nothing, even one that must not run twice.
    async with (
        behind_a_proxy(redis_url) as (url, proxy),
        pipe_to(url, health_check_interval=0.1) as pipe,
    ):
        assert await pipe.call("PING") == b"PONG"
        await proxy.sever_quietly()
        await asyncio.sleep(0.15)
        assert await pipe.call("ECHO", "once") == b"once"


async def test_a_script_redis_forgot_is_sent_whole(redis_url: str, redis_key_prefix: str) -> None:
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = f"{redis_key_prefix}counter"
    async with pipe_to(redis_url) as pipe:
        assert await pipe.script(script, [key], [2]) == 2
        await pipe.call("SCRIPT", "FLUSH")  # as after a restart of Redis
        assert await pipe.script(script, [key], [3]) == 5
        assert await pipe.script(script, [key], [1]) == 6


async def test_database_and_credentials_of_the_url(redis_url: str, redis_key_prefix: str) -> None:
    target = make_url(redis_url)
    other_db = int(target.database or 0) + 1
    url = f"redis://{target.host or '127.0.0.1'}:{target.port or 6379}/{other_db}"
    key = f"{redis_key_prefix}where"
    async with pipe_to(url) as pipe:
        await pipe.call("SET", key, "here")
    check = aioredis.Redis.from_url(url)
    try:
        assert await check.get(key) == b"here"
        await check.delete(key)
    finally:
        await check.aclose()
    async with pipe_to(url, password="s3cret-password") as pipe:
        with pytest.raises(StoreUnavailable, match="AUTH") as error:
            await pipe.call("PING")
        assert "s3cret" not in str(error.value)


def test_tls_and_other_client_options_stay_with_redis_py() -> None:
    assert RedisPipe.for_url("rediss://localhost:6380/0", {}, "lock store") is None
    assert RedisPipe.for_url("redis://localhost/0", {"ssl_ca_certs": "ca.pem"}, "x") is None
    assert RedisPipe.for_url("redis://localhost/0", {"password": "p"}, "x") is not None
    assert RedisLockStore("rediss://localhost:6380/0")._pipe is None


async def test_a_lock_whose_answers_are_lost_is_taken_and_released_once(
    redis_url: str, redis_key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis takes the ticket (and later releases it) but the connection dies before the answer:
    # the second run finds the first run's ticket instead of queueing a second one, which would
    # hold up the conversation for a whole lock lifetime.
    async with behind_a_proxy(redis_url) as (url, proxy):
        locks = RedisLockStore(url, key_prefix=redis_key_prefix, wait_timeout=2)
        try:
            async with locks.lock("bob"):  # connected (the proxy cuts connections it has),
                pass  # and Redis knows the scripts: the first runs below do run
            await proxy.lose_next_replies()
            ticket = await locks.acquire("alice")
            assert await locks.queue_length("alice") == 1
            await proxy.lose_next_replies()
            await locks.release("alice", ticket)
            assert await locks.queue_length("alice") == 0
            async with locks.lock("alice"):
                assert await locks.queue_length("alice") == 1
        finally:
            await locks.close()
    assert "lifetime" not in caplog.text  # the second release found its ticket gone: no alarm
