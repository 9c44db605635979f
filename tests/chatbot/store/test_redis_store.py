"""What the Redis conversation store adds to the store contract (test_conversation_store.py runs
the contract on it): Rasa's ``record_exp``, and an unreachable Redis named without its password."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.errors import StoreUnavailable
from chatbot.store.redis_store import RedisStore
from tests.helpers import free_port

pytestmark = pytest.mark.services


def session(n: int) -> list[dict]:
    return [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        *({"event": "user", "text": f"hi {i}", "timestamp": 2.0 + i} for i in range(n)),
    ]


async def test_record_exp_lets_a_quiet_conversation_expire(
    redis_url: str, redis_key_prefix: str
) -> None:
    async with RedisStore(redis_url, key_prefix=redis_key_prefix, record_exp=1) as store:
        await store.append("old", session(1), start_seq=0)
        await asyncio.sleep(0.6)
        await store.append("new", session(1), start_seq=0)
        assert await store.conversation_ids() == ["new", "old"]
        await asyncio.sleep(0.7)  # "old" is past its second; "new" is not
        assert await store.conversation_ids() == ["new"]
        assert (await store.load("old")).events == []
        assert (await store.load("new")).next_seq == 2
        await store.append("new", session(1), start_seq=2)  # a write renews it
        await asyncio.sleep(0.6)
        assert (await store.load("new", all_sessions=True)).next_seq == 4
        # The set of ids expires with the last conversation written, not never.
        ids_key = f"{redis_key_prefix}ids"
        await store.append("new", session(1), start_seq=4)
        assert 0 < await store._client.pttl(ids_key) <= 1000
        await asyncio.sleep(1.2)
        assert not await store._client.exists(ids_key)
        assert await store.conversation_ids() == []


async def test_an_unreachable_redis_is_unavailable_without_its_password() -> None:
    store = RedisStore(f"redis://:s3cret@127.0.0.1:{free_port()}/0", client_options={"retry": None})
    try:
        assert not await store.ping()
        with pytest.raises(StoreUnavailable) as error:
            await store.load("x")
        assert "s3cret" not in str(error.value) and "127.0.0.1" in str(error.value)
    finally:
        await store.close()
