"""InMemoryStore: conversations in a dict, gone when the process ends (tests, the shell)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.errors import ConflictError
from chatbot.store.base import (
    ConversationStore,
    StoredConversation,
    check_conversation_id,
    conflict_message,
    decode_event,
    encode_events,
    last_session_start,
)


@dataclass
class _Log:
    # Events are kept as JSON text, so what ``load`` returns never aliases what was appended,
    # exactly as with a database.
    events: list[str] = field(default_factory=list)
    session_start_seq: int = 0


class InMemoryStore(ConversationStore):
    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        check_conversation_id(conversation_id)
        log = self._logs.get(conversation_id)
        if log is None:
            return StoredConversation(conversation_id, [], next_seq=0, first_seq=0)
        first = 0 if all_sessions else log.session_start_seq
        events = [decode_event(data) for data in log.events[first:]]
        return StoredConversation(
            conversation_id, events, next_seq=len(log.events), first_seq=first
        )

    async def next_seq(self, conversation_id: str) -> int:
        check_conversation_id(conversation_id)
        log = self._logs.get(conversation_id)
        return len(log.events) if log is not None else 0

    async def load_since(self, conversation_id: str, seq: int) -> StoredConversation:
        check_conversation_id(conversation_id)
        log = self._logs.get(conversation_id)
        stored = log.events if log is not None else []
        events = [decode_event(data) for data in stored[seq:]]
        return StoredConversation(conversation_id, events, next_seq=len(stored), first_seq=seq)

    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        encoded = encode_events(conversation_id, events, start_seq)
        if not encoded:
            return
        log = self._logs.get(conversation_id)
        next_seq = len(log.events) if log is not None else 0
        if start_seq != next_seq:
            raise ConflictError(conflict_message(conversation_id, start_seq, next_seq))
        # No await between the check and the write: the batch lands whole or not at all.
        if log is None:
            log = self._logs[conversation_id] = _Log()
        log.events.extend(e.data for e in encoded)
        session_start = last_session_start(encoded)
        if session_start is not None:
            log.session_start_seq = session_start

    async def conversation_ids(self) -> list[str]:
        return sorted(self._logs)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass
