"""One behaviour table for every conversation store: memory, SQLite, PostgreSQL, MySQL, Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatbot.errors import ConflictError
from chatbot.store import ConversationStore, InMemoryLockStore

from .conftest import StoreBackend

SESSION_START = {"event": "action", "name": "action_session_start", "timestamp": 1.0}


def session(n: int, *, first: float = 10.0) -> list[dict[str, Any]]:
    """A session of ``n`` events after its start: user message, bot reply, listen, ..."""
    events: list[dict[str, Any]] = [dict(SESSION_START, timestamp=first)]
    kinds = [
        lambda i: {
            "event": "user",
            "timestamp": first + i,
            "text": f"hallo {i} ✓ «grüße»",
            "parse_data": {
                "intent": {"name": "greet", "confidence": 0.98},
                "entities": [{"entity": "city", "value": "Zürich", "start": 0, "end": 6}],
            },
        },
        lambda i: {"event": "bot", "timestamp": first + i, "text": "Hi!", "data": {}},
        lambda i: {"event": "action", "name": "action_listen", "timestamp": first + i},
        lambda i: {"event": "slot", "name": "count", "value": i, "timestamp": first + i},
    ]
    for i in range(n):
        events.append(kinds[i % len(kinds)](i + 1))
    return events


async def test_unknown_conversation_is_empty(store: ConversationStore) -> None:
    loaded = await store.load("nobody")
    assert (loaded.conversation_id, loaded.events, loaded.next_seq) == ("nobody", [], 0)
    assert await store.conversation_ids() == []
    assert await store.ping() is True


async def test_append_then_load_gives_the_events_verbatim(store: ConversationStore) -> None:
    events = session(5)
    await store.append("alice", events, start_seq=0)

    loaded = await store.load("alice")

    assert loaded.events == events
    assert loaded.next_seq == len(events)
    assert loaded.first_seq == 0


async def test_appended_events_do_not_alias_what_was_passed(store: ConversationStore) -> None:
    events = session(2)
    await store.append("alice", events, start_seq=0)
    events[1]["text"] = "changed afterwards"
    (await store.load("alice")).events[1]["text"] = "changed in a loaded copy"

    assert (await store.load("alice")).events == session(2)


async def test_appends_continue_the_seq(store: ConversationStore) -> None:
    first, second = session(3), session(2, first=50.0)[1:]
    await store.append("alice", first, start_seq=0)
    await store.append("alice", second, start_seq=len(first))

    loaded = await store.load("alice")

    assert loaded.events == first + second
    assert loaded.next_seq == len(first) + len(second)


async def test_next_seq_is_where_the_log_ends(store: ConversationStore) -> None:
    assert await store.next_seq("alice") == 0
    first, second = session(3), session(2, first=50.0)
    await store.append("alice", first, start_seq=0)
    assert await store.next_seq("alice") == len(first) == (await store.load("alice")).next_seq
    await store.append("alice", second, start_seq=len(first))  # a new session: all of them count
    assert await store.next_seq("alice") == len(first) + len(second)
    assert await store.next_seq("bob") == 0
    with pytest.raises(ConflictError):
        await store.append("alice", second, start_seq=len(first))
    assert await store.next_seq("alice") == len(first) + len(second)  # the conflict wrote nothing
    with pytest.raises(ValueError, match="non-empty"):
        await store.next_seq("")


async def test_load_since_gives_the_events_from_a_seq_across_sessions(
    store: ConversationStore,
) -> None:
    """What a process reads to catch up with others: every event from a seq on, whatever
    session it is in, and where the log ends."""
    first, second = session(3), session(2, first=50.0)
    await store.append("alice", first, start_seq=0)
    await store.append("alice", second, start_seq=len(first))
    everything = first + second
    for seq in (0, 2, len(first), len(everything) - 1):
        since = await store.load_since("alice", seq)
        assert since.events == everything[seq:]
        assert (since.first_seq, since.next_seq) == (seq, len(everything))
    past_the_end = await store.load_since("alice", len(everything))
    assert past_the_end.events == [] and past_the_end.next_seq == len(everything)
    nobody = await store.load_since("bob", 0)
    assert nobody.events == [] and nobody.next_seq == 0
    with pytest.raises(ValueError, match="non-empty"):
        await store.load_since("", 0)


@pytest.mark.parametrize("start_in_middle_of_batch", [False, True])
async def test_load_gives_the_last_session_unless_all_are_asked_for(
    store: ConversationStore, start_in_middle_of_batch: bool
) -> None:
    old, new = session(6, first=10.0), session(3, first=100.0)
    if start_in_middle_of_batch:
        await store.append("alice", old + new, start_seq=0)
    else:
        await store.append("alice", old, start_seq=0)
        await store.append("alice", new, start_seq=len(old))

    last = await store.load("alice")
    everything = await store.load("alice", all_sessions=True)

    assert last.events == new
    assert last.first_seq == len(old)
    assert last.next_seq == len(old) + len(new)
    assert everything.events == old + new
    assert everything.first_seq == 0
    assert everything.next_seq == last.next_seq


async def test_a_conversation_without_session_start_is_one_session(
    store: ConversationStore,
) -> None:
    events = session(4)[1:]
    await store.append("alice", events, start_seq=0)

    assert (await store.load("alice")).events == events


@pytest.mark.parametrize(
    ("start_seq", "why"),
    [(0, "the first event again"), (3, "the middle of the stored batch"), (7, "a gap after it")],
)
async def test_append_at_a_taken_or_wrong_seq_conflicts_and_writes_nothing(
    store: ConversationStore, start_seq: int, why: str
) -> None:
    stored = session(4)  # seqs 0..4
    await store.append("alice", stored, start_seq=0)

    with pytest.raises(ConflictError, match=r"alice.*seq 5"):
        await store.append("alice", session(2, first=99.0), start_seq=start_seq)

    assert (await store.load("alice", all_sessions=True)).events == stored, why


async def test_a_new_conversation_must_start_at_seq_0(store: ConversationStore) -> None:
    with pytest.raises(ConflictError):
        await store.append("bob", session(1), start_seq=1)

    assert await store.conversation_ids() == []
    assert (await store.load("bob")).next_seq == 0


async def test_a_bad_event_in_a_batch_writes_nothing(store: ConversationStore) -> None:
    good = session(1)
    with pytest.raises(ValueError, match="event 1"):
        await store.append("alice", [good[0], {"event": "user", "text": object()}], start_seq=0)
    with pytest.raises(ValueError, match="no 'event' name"):
        await store.append("alice", [good[0], {"text": "no type"}], start_seq=0)

    assert await store.conversation_ids() == []


async def test_an_empty_batch_writes_nothing(store: ConversationStore) -> None:
    await store.append("alice", [], start_seq=0)

    assert await store.conversation_ids() == []


async def test_text_that_is_not_unicode_is_kept_as_it_came(store: ConversationStore) -> None:
    # A lone surrogate (JSON's "\\ud800" decodes to one; a socket.io client can send it) is not
    # UTF-8 text: the event is stored escaped, and loads back as the very same string.
    events = [
        {"event": "user", "text": "hi \ud800 there", "parse_data": {"x\udfff": ["\udc00"]}},
        {"event": "bot", "text": "ünïcode \U0001f600 stays as it is"},
    ]
    await store.append("alice", events, start_seq=0)
    assert (await store.load("alice")).events == events


@pytest.mark.parametrize("conversation_id", ["a\x00b", "a\ud800b"])
async def test_conversation_ids_no_store_can_hold_are_refused(
    store: ConversationStore, conversation_id: str
) -> None:
    with pytest.raises(ValueError, match="conversation id cannot hold"):
        await store.append(conversation_id, session(1), start_seq=0)
    with pytest.raises(ValueError, match="conversation id cannot hold"):
        await store.load(conversation_id)
    assert await store.conversation_ids() == []


@pytest.mark.parametrize("conversation_id", ["", "x" * 256])
async def test_conversation_ids_must_be_non_empty_and_short(
    store: ConversationStore, conversation_id: str
) -> None:
    with pytest.raises(ValueError, match="conversation id"):
        await store.append(conversation_id, session(1), start_seq=0)
    with pytest.raises(ValueError, match="conversation id"):
        await store.load(conversation_id)


async def test_conversation_ids_are_listed_sorted(store: ConversationStore) -> None:
    for name in ["carol", "alice", "bob", "ünïcode", "id:with/odd chars"]:
        await store.append(name, session(1), start_seq=0)

    assert await store.conversation_ids() == sorted(
        ["carol", "alice", "bob", "ünïcode", "id:with/odd chars"]
    )


async def test_ids_that_differ_only_in_case_or_spacing_are_other_conversations(
    store: ConversationStore,
) -> None:
    """MySQL compares text in a collation: "Alice" = "alice" (case-insensitive ones) and
    "bob" = "bob " (every PAD SPACE one): two users' messages would have mixed in one row."""
    names = ["alice", "Alice", "ALICE", "bob", "bob ", " bob", "straße", "strasse"]
    for n, name in enumerate(names):
        await store.append(name, [{"event": "user", "text": f"I am {n}"}], start_seq=0)
    for n, name in enumerate(names):
        assert (await store.load(name)).events == [{"event": "user", "text": f"I am {n}"}]
    assert sorted(await store.conversation_ids()) == sorted(names)


async def test_big_events_long_ids_and_times_are_kept_exactly(store: ConversationStore) -> None:
    """A 300 KB event (MySQL's TEXT holds 64 KiB), an id of 255 four-byte characters, and
    Unix times to the microsecond (MySQL's FLOAT keeps about 7 digits: minutes, not
    microseconds)."""
    conversation_id = "\U0001f600" * 255
    now = 1_796_000_000.123456
    events = [
        {"event": "user", "text": "x" * 300_000, "timestamp": now},
        {"event": "action", "name": "action_listen", "timestamp": now + 0.000001},
    ]
    await store.append(conversation_id, events, start_seq=0)
    loaded = await store.load(conversation_id)
    assert loaded.events == events
    assert await store.conversation_ids() == [conversation_id]


async def test_concurrent_turns_under_the_lock_get_consecutive_seqs(
    store: ConversationStore,
) -> None:
    locks = InMemoryLockStore()
    conversations, tasks_per_conversation, turns = 4, 16, 5  # 64 tasks

    async def user(conversation_id: str, who: int) -> None:
        for turn in range(turns):
            async with locks.lock(conversation_id):
                loaded = await store.load(conversation_id)
                batch = [
                    {"event": "user", "text": f"{who}/{turn}", "timestamp": float(turn)},
                    {"event": "action", "name": "action_listen", "timestamp": float(turn)},
                ]
                await store.append(conversation_id, batch, start_seq=loaded.next_seq)

    await asyncio.gather(
        *(user(f"c{c}", who) for c in range(conversations) for who in range(tasks_per_conversation))
    )

    for c in range(conversations):
        loaded = await store.load(f"c{c}", all_sessions=True)
        assert loaded.next_seq == tasks_per_conversation * turns * 2
        texts = [e["text"] for e in loaded.events if e["event"] == "user"]
        assert sorted(texts) == sorted(
            f"{who}/{turn}" for who in range(tasks_per_conversation) for turn in range(turns)
        )
        # Each turn's two events stayed together.
        assert [e["event"] for e in loaded.events] == ["user", "action"] * (len(texts))


async def test_racing_writers_without_a_lock_never_interleave(store: ConversationStore) -> None:
    """Without the lock, writers that loaded the same state conflict; whatever was written is
    whole batches, back to back."""
    await store.append("alice", session(0), start_seq=0)
    loaded = await store.load("alice")
    written, conflicts = [], 0

    async def writer(who: int) -> None:
        nonlocal conflicts
        batch = [{"event": "user", "text": str(who)}, {"event": "bot", "text": str(who)}]
        try:
            await store.append("alice", batch, start_seq=loaded.next_seq)
            written.append(who)
        except ConflictError:
            conflicts += 1

    await asyncio.gather(*(writer(who) for who in range(16)))

    assert len(written) == 1
    assert conflicts == 15
    events = (await store.load("alice")).events
    assert [e.get("text") for e in events[1:]] == [str(written[0])] * 2


async def test_a_new_store_on_the_same_database_sees_everything(backend: StoreBackend) -> None:
    if not backend.persistent:
        pytest.skip("an in-memory store keeps nothing across restarts, by design")
    old, new = session(3), session(2, first=100.0)
    async with backend.new_store() as first:
        await first.append("alice", old + new, start_seq=0)
        await first.append("bob", session(1), start_seq=0)

    async with backend.new_store() as second:
        assert await second.conversation_ids() == ["alice", "bob"]
        assert (await second.load("alice", all_sessions=True)).events == old + new
        assert (await second.load("alice")).events == new
        more = [{"event": "user", "text": "after the restart"}]
        await second.append("alice", more, start_seq=len(old) + len(new))
        assert (await second.load("alice")).events == new + more
