"""JSON Lines export and import, on every store."""

from __future__ import annotations

import io
import json
from pathlib import Path

from chatbot.store import ConversationStore, InMemoryStore, export_jsonl, import_jsonl

from .conftest import StoreBackend
from .test_conversation_store import session

CONVERSATIONS = {
    "alice": session(4) + session(3, first=100.0),  # two sessions
    "bob": session(1),
    "ünïcode/id": session(2)[1:],  # no session start
}


async def fill(store: ConversationStore) -> None:
    for conversation_id, events in CONVERSATIONS.items():
        await store.append(conversation_id, events, start_seq=0)


async def test_export_then_import_gives_the_same_conversations(
    store: ConversationStore, backend: StoreBackend, tmp_path: Path
) -> None:
    await fill(store)
    path = tmp_path / "conversations.jsonl"

    assert await export_jsonl(store, path) == 3
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["conversation_id"] for line in lines] == sorted(CONVERSATIONS)
    assert all(set(line) == {"conversation_id", "events"} for line in lines)

    target = InMemoryStore() if backend.kind != "memory" else backend.new_store()
    report = await import_jsonl(target, path)

    assert report.imported == sorted(CONVERSATIONS)
    assert (report.conflicts, report.errors) == ([], [])
    assert report.events == sum(len(events) for events in CONVERSATIONS.values())
    for conversation_id, events in CONVERSATIONS.items():
        loaded = await target.load(conversation_id, all_sessions=True)
        assert loaded.events == events
    assert (await target.load("alice")).events == CONVERSATIONS["alice"][5:]


async def test_import_into_the_store_reports_ids_it_has_and_keeps_them(
    store: ConversationStore, tmp_path: Path
) -> None:
    await store.append("bob", [{"event": "user", "text": "already here"}], start_seq=0)
    source = InMemoryStore()
    await fill(source)
    path = tmp_path / "conversations.jsonl"
    await export_jsonl(source, path)

    report = await import_jsonl(store, path)

    assert report.imported == ["alice", "ünïcode/id"]
    assert report.conflicts == ["bob"]
    assert (await store.load("bob")).events == [{"event": "user", "text": "already here"}]
    assert (await store.load("alice", all_sessions=True)).events == CONVERSATIONS["alice"]


async def test_lines_that_are_not_conversations_are_reported_with_their_line(
    store: ConversationStore, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = json.dumps({"conversation_id": "alice", "events": session(1)})
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                json.dumps({"events": session(1)}),
                "",
                json.dumps({"conversation_id": "bob", "events": []}),
                json.dumps({"conversation_id": "carol", "events": [{"no": "type"}]}),
                json.dumps(["a", "list"]),
                '{"conversation_id": "dan", "events": [{"event": "slot", "value": NaN}]}',
                '{"conversation_id": "eve", "events": ' + "[" * 5000 + "]" * 5000 + "}",
                json.dumps({"conversation_id": "fay", "events": [{"event": "bot", "data": "x"}]}),
            ]
        ),
        encoding="utf-8",
    )

    report = await import_jsonl(store, path)

    assert report.imported == ["alice"]
    assert report.errors == [
        f"{path}:2: not JSON (Expecting property name enclosed in double quotes)",
        f"{path}:3: no 'conversation_id'",
        f"{path}:5: conversation 'bob' has no 'events'",
        f"{path}:6: conversation 'carol': events[0]: missing string key 'event'",
        f"{path}:7: no 'conversation_id'",
        f"{path}:8: not JSON (NaN is not a JSON value)",
        f"{path}:9: not JSON (the JSON nests too deeply)",
        f"{path}:10: conversation 'fay': events[0]: key 'data' must be an object or null",
    ]
    assert await store.conversation_ids() == ["alice"]


async def test_export_of_chosen_conversations_to_a_stream(store: ConversationStore) -> None:
    await fill(store)
    stream = io.StringIO()

    written = await export_jsonl(store, stream, ["bob", "nobody", "alice"])

    assert written == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["conversation_id"], line["events"]) for line in lines] == [
        ("bob", CONVERSATIONS["bob"]),
        ("alice", CONVERSATIONS["alice"]),
    ]
    report = await import_jsonl(InMemoryStore(), io.StringIO(stream.getvalue()))
    assert report.imported == ["bob", "alice"]


async def test_text_that_is_not_unicode_survives_export_and_import(
    store: ConversationStore, tmp_path: Path
) -> None:
    events = [{"event": "user", "text": "a lone \ud800 half", "timestamp": 1.0}]
    await store.append("alice", events, start_seq=0)
    path = tmp_path / "conversations.jsonl"
    assert await export_jsonl(store, path) == 1  # the file is UTF-8: the half is escaped
    target = InMemoryStore()
    report = await import_jsonl(target, path)
    assert report.imported == ["alice"]
    assert (await target.load("alice")).events == events
