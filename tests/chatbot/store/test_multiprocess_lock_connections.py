"""The Redis lock stores of two server processes, each with more messages in flight than redis-py's
default pool has connections (100): every message gets its conversation's lock, in turn.

Found by test_multiprocess.py with 200 concurrent clients on two servers: about one message in
seven failed with "lock store unavailable (...): Too many connections", and a release that failed
so left its conversation locked for the lock's whole lifetime, so that the messages queued behind
it timed out too (503 ConversationBusy after 65 s).
"""

from __future__ import annotations

import asyncio

import pytest

from chatbot.store.redis_lock import RedisLockStore

PROCESSES = 2
MESSAGES_IN_FLIGHT = 150  # per process
CONVERSATIONS = 50


@pytest.mark.services
async def test_more_messages_in_flight_than_redis_connections_all_get_their_lock(
    redis_url: str, redis_key_prefix: str
) -> None:
    stores = [
        RedisLockStore(redis_url, key_prefix=redis_key_prefix, lock_lifetime=60, wait_timeout=60)
        for _ in range(PROCESSES)
    ]
    holders: dict[str, int] = {}
    served: list[str] = []

    async def message(store: RedisLockStore, conversation_id: str) -> None:
        async with store.lock(conversation_id):
            holders[conversation_id] = holders.get(conversation_id, 0) + 1
            assert holders[conversation_id] == 1, f"two holders of {conversation_id}'s lock"
            # A round trip while holding the lock, as a turn's load and append are.
            assert await store.queue_length(conversation_id) >= 1
            holders[conversation_id] -= 1
            served.append(conversation_id)

    messages = [
        message(stores[i % PROCESSES], f"user-{i % CONVERSATIONS}")
        for i in range(PROCESSES * MESSAGES_IN_FLIGHT)
    ]
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*messages, return_exceptions=True), 120)
    finally:
        for store in stores:
            await store.close()
    failed = [repr(outcome) for outcome in outcomes if outcome is not None]
    assert not failed, f"{len(failed)} of {len(outcomes)} messages failed, e.g. {failed[:2]}"
    assert len(served) == PROCESSES * MESSAGES_IN_FLIGHT
