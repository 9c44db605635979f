"""RedisStore: conversations in Redis (endpoints.yml ``tracker_store: type: redis``, Rasa's name).

Under a key prefix (default ``chatbot:store:``), each conversation has a list of its events (the
JSON of each, at index = seq) and a list of the seqs where its sessions start; a set holds every
conversation id. An append is one Lua script, so it is atomic: it refuses a batch whose first seq
is not the list's length (``ConflictError``, nothing written), and otherwise writes the whole
batch. Loading the last session is one script too. ``record_exp`` (seconds, Rasa's key) lets a
conversation expire that long after its last write, as Rasa's Redis tracker store does.

The keys are this project's own layout, not Rasa's ``tracker:<id>`` blobs: a Rasa Redis database
is not read (``chatbot import`` takes conversations exported as JSON lines).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from chatbot.errors import ConflictError, StoreUnavailable
from chatbot.store.base import (
    ConversationStore,
    StoredConversation,
    check_conversation_id,
    conflict_message,
    decode_event,
    encode_events,
)
from chatbot.store.redis_client import call, redis_client

DEFAULT_KEY_PREFIX = "chatbot:store:"

# KEYS: events, sessions, ids. ARGV: start seq, ttl seconds (0: none), the id, session-start
# seqs joined by commas, then the events' JSON. {1, new length} or {0, the length it had}.
# With a ttl, the ids set expires with the last conversation written (an expired one's id is
# dropped from it when the ids are next read): it no longer grows for good.
_LUA_APPEND = """
local n = redis.call('LLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return {0, n} end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
for seq in string.gmatch(ARGV[4], '[^,]+') do redis.call('RPUSH', KEYS[2], seq) end
redis.call('SADD', KEYS[3], ARGV[3])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
  redis.call('EXPIRE', KEYS[3], ttl)
end
return {1, n + #ARGV - 4}
"""

# KEYS: events, sessions. {first seq, events from it, length}: the last session, or all.
_LUA_LOAD = """
local first = 0
if ARGV[1] == '0' then first = tonumber(redis.call('LINDEX', KEYS[2], -1) or '0') end
return {first, redis.call('LRANGE', KEYS[1], first, -1), redis.call('LLEN', KEYS[1])}
"""


class RedisStore(ConversationStore):
    """Conversations in the Redis at ``url`` (``redis://[:password@]host:port/db``)."""

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        record_exp: float | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if record_exp is not None and record_exp <= 0:
            raise ValueError(f"record_exp must be positive, not {record_exp!r}")
        self.url = url
        self.key_prefix = key_prefix
        self.record_exp = int(record_exp) if record_exp else 0
        self._client = redis_client(url, client_options)
        self._append = self._client.register_script(_LUA_APPEND)
        self._load = self._client.register_script(_LUA_LOAD)

    def _keys(self, conversation_id: str) -> list[str]:
        return [
            f"{self.key_prefix}events:{conversation_id}",
            f"{self.key_prefix}sessions:{conversation_id}",
        ]

    @property
    def _ids_key(self) -> str:
        return f"{self.key_prefix}ids"

    async def start(self) -> None:
        await self._call(self._client.ping())

    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        check_conversation_id(conversation_id)
        first, raw, length = await self._call(
            self._load(keys=self._keys(conversation_id), args=["1" if all_sessions else "0"])
        )
        events = [decode_event(data.decode() if isinstance(data, bytes) else data) for data in raw]
        return StoredConversation(
            conversation_id, events, next_seq=int(length), first_seq=int(first)
        )

    async def next_seq(self, conversation_id: str) -> int:
        check_conversation_id(conversation_id)
        return int(await self._call(self._client.llen(self._keys(conversation_id)[0])))

    async def load_since(self, conversation_id: str, seq: int) -> StoredConversation:
        check_conversation_id(conversation_id)
        raw = await self._call(self._client.lrange(self._keys(conversation_id)[0], seq, -1))
        events = [decode_event(data.decode() if isinstance(data, bytes) else data) for data in raw]
        return StoredConversation(
            conversation_id, events, next_seq=seq + len(events), first_seq=seq
        )

    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        encoded = encode_events(conversation_id, events, start_seq)
        if not encoded:
            return
        starts = ",".join(str(e.seq) for e in encoded if e.session_start)
        args: list[str | int] = [start_seq, self.record_exp, conversation_id, starts]
        args += [e.data for e in encoded]
        keys = [*self._keys(conversation_id), self._ids_key]
        written, length = await self._call(self._append(keys=keys, args=args))
        if not written:
            raise ConflictError(conflict_message(conversation_id, start_seq, int(length)))

    async def conversation_ids(self) -> list[str]:
        members = await self._call(self._client.smembers(self._ids_key))
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        if not self.record_exp or not ids:
            return ids
        # Expired conversations leave their id in the set: drop them.
        exists = await self._call(
            asyncio.gather(*(self._client.exists(self._keys(i)[0]) for i in ids))
        )
        gone = [i for i, there in zip(ids, exists, strict=True) if not there]
        if gone:
            await self._call(self._client.srem(self._ids_key, *gone))
        return [i for i in ids if i not in set(gone)]

    async def ping(self) -> bool:
        try:
            return bool(await self._call(self._client.ping()))
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, awaitable: Any) -> Any:
        return await call(self._client, awaitable, "conversation store")
