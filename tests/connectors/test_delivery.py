"""The pieces under the webhook channels: the TTL cache of what was seen, the per-conversation
workers, and the retrying API client (against a real aiohttp server on loopback)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web

from connectors.delivery import ConversationWorkers, SeenCache
from connectors.outbound import ApiClient, RetryPolicy
from tests.connectors.servers import WAIT, serve


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_seen_keys_are_remembered_for_their_ttl() -> None:
    clock = Clock()
    seen = SeenCache(ttl=60, clock=clock)
    assert seen.first_time("a")
    assert not seen.first_time("a")
    clock.now = 59.9
    assert not seen.first_time("a")
    clock.now = 60.0
    assert seen.first_time("a")


def test_any_key_seen_makes_the_delivery_a_repeat_and_all_are_remembered() -> None:
    seen = SeenCache()
    assert seen.first_time("event:1", "ts:C1:1.0")
    assert not seen.first_time("event:2", "ts:C1:1.0")  # the same message, another event
    assert not seen.first_time("event:1")


def test_the_cache_is_bounded_oldest_first() -> None:
    seen = SeenCache(max_entries=3)
    for key in "abcd":
        assert seen.first_time(key)
    assert len(seen) == 3
    assert seen.first_time("a")  # forgotten: the oldest went first
    assert not seen.first_time("d")


async def test_jobs_of_one_conversation_run_in_order_and_others_in_parallel() -> None:
    workers = ConversationWorkers("test")
    log: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False) -> Any:
        async def run() -> None:
            if wait:
                await gate.wait()
            log.append(name)

        return run

    workers.submit("a", job("a1", wait=True))
    workers.submit("a", job("a2"))
    await workers.run("b", job("b1"))  # b is not held up by a
    assert log == ["b1"]
    gate.set()
    await workers.close(grace=WAIT)
    assert log == ["b1", "a1", "a2"]
    assert workers.busy == 0


async def test_a_failing_job_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = ConversationWorkers("test")

    async def boom() -> None:
        raise ValueError("boom")

    async def fine() -> str:
        return "fine"

    workers.submit("a", boom)
    assert await workers.run("a", fine) == "fine"
    with pytest.raises(ValueError, match="boom"):
        await workers.run("a", boom)  # run() hands the failure to its caller
    assert "a job failed" in caplog.text


async def test_close_cancels_what_outlives_the_grace_and_its_waiters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = ConversationWorkers("test", grace=0.05)
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.Event().wait()

    async def never() -> None:
        raise AssertionError("a job queued behind a cancelled one must not run")

    workers.submit("a", stuck)
    waiter = asyncio.ensure_future(workers.run("a", never))
    await asyncio.wait_for(started.wait(), WAIT)
    await workers.close()
    assert workers.busy == 0
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert "cancelling 1 unfinished" in caplog.text
    assert not workers.submit("a", never)  # closed


async def test_a_full_queue_drops_new_jobs(caplog: pytest.LogCaptureFixture) -> None:
    workers = ConversationWorkers("test", max_pending=2)
    hold = asyncio.Event()

    async def wait() -> None:
        await hold.wait()

    assert workers.submit("a", wait)
    assert workers.submit("a", wait)
    assert not workers.submit("a", wait)  # two wait already (the worker has not started)
    assert workers.submit("b", wait)  # another conversation has a queue of its own
    hold.set()
    await workers.close(grace=WAIT)
    assert "dropped a new one" in caplog.text


async def test_the_client_returns_other_answers_as_they_are_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = [
        web.json_response({"ok": False, "error": "channel_not_found"}),
        web.Response(status=503, text="<html>down</html>"),
        web.json_response({"ok": True}),
    ]

    async def method(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_post("/api/{method}", method)
    policy = RetryPolicy(attempts=2, base_delay=0.01, timeout=WAIT)
    async with serve(app) as served, ApiClient("test", f"{served.url}/api", policy=policy) as api:
        refused = await api.call("chat.postMessage", {})
        assert refused is not None and not refused.ok
        assert refused.body["error"] == "channel_not_found"
        ok = await api.call("chat.postMessage", {})
        assert ok is not None and ok.ok  # after one 503

    port = served.url.rsplit(":", 1)[1]
    caplog.set_level(logging.WARNING)
    gone = ApiClient("test", f"http://127.0.0.1:{port}/api", policy=policy)
    async with gone:
        assert await gone.call("chat.postMessage", {}) is None  # nobody listens any more
    assert "giving up after 2 attempts" in caplog.text
    assert await gone.call("chat.postMessage", {}) is None  # closed: logged, not raised


@pytest.mark.parametrize(("retry", "most"), [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)])
def test_backoff_doubles_with_jitter_up_to_the_cap(retry: int, most: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    waits = [policy.backoff(retry) for _ in range(50)]
    assert all(most / 2 <= wait <= most for wait in waits)
