"""The conversation store interface: an append-only log of Rasa events per conversation.

Every event of a conversation has a sequence number (``seq``), 0 for the first event, one more
for each later event. Writers say at which seq their events start; a store refuses a batch whose
first seq is not the conversation's next one (``ConflictError``), so two writers that both
believed they held the conversation's lock cannot interleave their events silently.

A *session* starts at the event ``{"event": "action", "name": "action_session_start"}``. Loading a
conversation returns its last session by default (a per-turn cost that does not grow with the
length of the conversation), or every event when asked.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from chatbot.json_input import is_unicode_text

SESSION_START_ACTION = "action_session_start"
# The longest conversation id a store accepts (Rasa's ``sender_id`` column is as wide).
MAX_CONVERSATION_ID_LENGTH = 255


@dataclass(frozen=True)
class StoredConversation:
    """What ``ConversationStore.load`` returns.

    ``events`` are the Rasa event dicts from ``first_seq`` on; ``next_seq`` is the seq the next
    appended event gets (0 for a conversation that has no events yet).
    """

    conversation_id: str
    events: list[dict[str, Any]]
    next_seq: int
    first_seq: int = 0


class ConversationStore(ABC):
    """One extension point: where conversations' events live. An async context manager.

    Implementations raise ``chatbot.errors.StoreUnavailable`` when their database cannot be
    reached, and recover by themselves on a later call once it can.
    """

    async def start(self) -> None:  # noqa: B027 - optional hook, most stores need no start-up
        """Connect and prepare (create tables); called by ``async with``."""

    @abstractmethod
    async def load(self, conversation_id: str, *, all_sessions: bool = False) -> StoredConversation:
        """The conversation's last session (every event with ``all_sessions=True``)."""

    async def next_seq(self, conversation_id: str) -> int:
        """The seq the conversation's next event gets (0 for none): where its log ends, read
        without its events. Stores override this with one small read; this default loads the
        last session."""
        return (await self.load(conversation_id)).next_seq

    async def load_since(self, conversation_id: str, seq: int) -> StoredConversation:
        """The conversation's events from seq ``seq`` on (``first_seq`` is ``seq``) and where its
        log ends: how a process catches up on what others appended since it last read. Stores
        override this with one read of those events; this default loads all of them."""
        stored = await self.load(conversation_id, all_sessions=True)
        events = stored.events[seq - stored.first_seq :] if seq >= stored.first_seq else []
        return StoredConversation(conversation_id, events, next_seq=stored.next_seq, first_seq=seq)

    @abstractmethod
    async def append(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, start_seq: int
    ) -> None:
        """Append events with seqs ``start_seq, start_seq + 1, ...``, all or none.

        Raises ``ConflictError`` (and writes nothing) unless ``start_seq`` is the conversation's
        ``next_seq``.
        """

    @abstractmethod
    async def conversation_ids(self) -> list[str]:
        """Every conversation id that has events, sorted."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers (for health checks); never raises."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. A closed store is not used again."""

    async def __aenter__(self) -> ConversationStore:
        try:
            await self.start()
        except BaseException:
            await self.close()  # ``__aexit__`` does not run when ``__aenter__`` fails
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def is_session_start(event: Mapping[str, Any]) -> bool:
    return event.get("event") == "action" and event.get("name") == SESSION_START_ACTION


def check_conversation_id(conversation_id: str) -> None:
    problem = conversation_id_problem(conversation_id)
    if problem is not None:
        raise ValueError(problem)


def conversation_id_problem(conversation_id: object) -> str | None:
    """Why a store cannot take ``conversation_id``, or None."""
    if not isinstance(conversation_id, str) or not conversation_id:
        return f"a conversation id is a non-empty string, not {conversation_id!r}"
    if len(conversation_id) > MAX_CONVERSATION_ID_LENGTH:
        return (
            f"conversation id of {len(conversation_id)} characters is longer than "
            f"{MAX_CONVERSATION_ID_LENGTH}: {conversation_id[:40]!r}..."
        )
    problem = conversation_id_text_problem(conversation_id)
    return None if problem is None else f"{problem}: {conversation_id[:40]!r}"


def conversation_id_text_problem(conversation_id: str) -> str | None:
    """Why a conversation id's characters cannot be stored, or None: PostgreSQL text holds no
    NUL character, and no store holds a lone surrogate (JSON's ``\\ud800`` escapes decode to
    one), which is not Unicode text."""
    if "\x00" in conversation_id:
        return "a conversation id cannot hold the NUL character (\\u0000)"
    if not is_unicode_text(conversation_id):
        return "a conversation id cannot hold a lone surrogate (\\ud800-\\udfff)"
    return None


@dataclass(frozen=True)
class EncodedEvent:
    """One event ready to be written: its seq, type name, timestamp and JSON text."""

    seq: int
    type_name: str
    timestamp: float | None
    data: str
    session_start: bool


# One encoder for every event: ``json.dumps`` with non-default options builds one per call.
_EVENT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ASCII_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def json_text(value: Any) -> str:
    """``value`` as compact JSON, non-ASCII characters as they are; but where a string holds a
    lone surrogate (which no UTF-8 database or file can hold), all of it as ASCII with
    ``\\u`` escapes, which decodes back to the very same strings. Raises what ``json`` raises
    for a value that is not JSON."""
    text = _EVENT_JSON.encode(value)
    return text if is_unicode_text(text) else _ASCII_JSON.encode(value)


def encode_events(
    conversation_id: str, events: Sequence[Mapping[str, Any]], start_seq: int
) -> list[EncodedEvent]:
    """Validate and serialize a batch before anything is written (a bad event writes nothing)."""
    check_conversation_id(conversation_id)
    if isinstance(start_seq, bool) or not isinstance(start_seq, int) or start_seq < 0:
        raise ValueError(f"start_seq is a non-negative int, not {start_seq!r}")
    encoded = []
    for offset, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ValueError(f"event {offset} of the batch is not a dict: {type(event).__name__}")
        type_name = event.get("event")
        if not isinstance(type_name, str) or not type_name:
            raise ValueError(f"event {offset} of the batch has no 'event' name")
        timestamp = event.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            timestamp = None
        try:
            data = json_text(event)
        except (TypeError, ValueError) as error:
            raise ValueError(f"event {offset} of the batch is not JSON: {error}") from None
        encoded.append(
            EncodedEvent(
                seq=start_seq + offset,
                type_name=type_name,
                timestamp=float(timestamp) if timestamp is not None else None,
                data=data,
                session_start=is_session_start(event),
            )
        )
    return encoded


def last_session_start(encoded: Sequence[EncodedEvent]) -> int | None:
    """The seq of the batch's last session start, if it has one."""
    starts = [e.seq for e in encoded if e.session_start]
    return starts[-1] if starts else None


def decode_event(data: str) -> dict[str, Any]:
    event = json.loads(data)
    assert isinstance(event, dict), f"stored event is a {type(event).__name__}, not an object"
    return event


def conflict_message(conversation_id: str, start_seq: int, next_seq: int) -> str:
    return (
        f"conversation '{conversation_id}': cannot append at seq {start_seq}, the store is at "
        f"seq {next_seq} (another writer appended first; was the conversation's lock lost?)"
    )
