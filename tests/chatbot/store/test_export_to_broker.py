"""``chatbot export`` without ``--out`` (Rasa's ``rasa export``): the stored events published to
endpoints.yml's event broker, conversation by conversation and in order, within the timestamps
asked for; a broker that publishes nothing is given up after ``--timeout``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chatbot.agent import Agent
from chatbot.store import SQLStore
from chatbot.store.broker import create_event_broker, publish_stored
from tests.helpers import dialogue_model, free_port
from tests.test_cli import chatbot

from .test_sql_broker import block, sqlite_rows

CONVERSATIONS = [("ann", ["/greet", "/mood_great"]), ("bob", ["/greet"]), ("cy", ["/goodbye"])]


async def _fill(project: Path) -> dict[str, list[dict[str, Any]]]:
    """Conversations in the project's default store (as `chatbot run` keeps them)."""
    store = SQLStore(f"sqlite:///{project / '.chatbot' / 'conversations.db'}")
    agent = Agent(dialogue_model("moodbot"), store=store)
    try:
        for sender, texts in CONVERSATIONS:
            for text in texts:
                await agent.handle_text(text, sender)
            await asyncio.sleep(0.01)  # the conversations apart in time
        return {
            sender: (await store.load(sender, all_sessions=True)).events
            for sender, _ in CONVERSATIONS
        }
    finally:
        await agent.close()


def _project(tmp_path: Path, broker: str) -> Path:
    project = tmp_path / "bot"
    (project / ".chatbot").mkdir(parents=True)
    (project / "endpoints.yml").write_text(broker)
    return project


SQLITE_BROKER = "event_broker:\n  type: sql\n  db: events.db\n"


async def test_every_stored_event_is_published_in_order(tmp_path: Path) -> None:
    project = _project(tmp_path, SQLITE_BROKER)
    stored = await _fill(project)

    result = chatbot("export", "--project", str(project))

    assert result.returncode == 0, result.stderr
    rows = sqlite_rows(project / "events.db")
    want = sum(len(events) for events in stored.values())
    # Conversation after conversation, each one's events in their order.
    assert [data for _, _, data in rows] == [
        {"sender_id": sender, **e} for sender, _ in CONVERSATIONS for e in stored[sender]
    ]
    for sender, _ in CONVERSATIONS:  # each conversation's events in their order
        assert [data for _, s, data in rows if s == sender] == [
            {"sender_id": sender, **e} for e in stored[sender]
        ]
    assert f"Published {want} event(s) of 3 conversation(s)" in result.stdout


async def test_conversations_and_times_are_chosen(tmp_path: Path) -> None:
    project = _project(tmp_path, SQLITE_BROKER)
    stored = await _fill(project)
    since = min(e["timestamp"] for e in stored["bob"])  # bob's and cy's events, not ann's
    result = chatbot(
        "export", "--project", str(project), "--conversation-ids", "ann,bob",
        "--minimum-timestamp", str(since),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = sqlite_rows(project / "events.db")
    assert {sender for _, sender, _ in rows} == {"bob"}
    assert len(rows) == len(stored["bob"])

    until = max(e["timestamp"] for e in stored["ann"])
    result = chatbot(
        "export", "--project", str(project), "--conversation", "cy", "--conversation", "ann",
        "--maximum-timestamp", str(until),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = sqlite_rows(project / "events.db")[len(stored["bob"]) :]
    assert [data for _, _, data in rows] == [{"sender_id": "ann", **e} for e in stored["ann"]]


async def test_rasa_export_endpoints_and_timestamp_offset(tmp_path: Path) -> None:
    """``rasa export --endpoints FILE --offset-timestamps-by-seconds N``: the store and broker of
    another endpoints file, every published timestamp moved by N (chosen by the stored time)."""
    project = _project(tmp_path, "")  # the project's own endpoints.yml names no broker
    stored = await _fill(project)
    other = tmp_path / "export-endpoints.yml"
    other.write_text(f"event_broker:\n  type: sql\n  db: {tmp_path / 'other.db'}\n")
    since = min(e["timestamp"] for e in stored["bob"])
    result = chatbot(
        "export", "--project", str(project), "--endpoints", str(other),
        "--offset-timestamps-by-seconds", "3600", "--conversation", "bob",
        "--minimum-timestamp", str(since),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = sqlite_rows(tmp_path / "other.db")
    assert [data for _, _, data in rows] == [
        {"sender_id": "bob", **e, "timestamp": e["timestamp"] + 3600} for e in stored["bob"]
    ]
    result = chatbot("export", "--project", str(project), "--endpoints", str(tmp_path / "no.yml"))
    assert (
        result.returncode == 1
        and "--endpoints" in result.stderr
        and "no such file" in (result.stderr)
    )
    result = chatbot(
        "export", "--project", str(project), "--out", str(tmp_path / "x.jsonl"),
        "--offset-timestamps-by-seconds", "5",
    )  # fmt: skip
    assert result.returncode == 1 and "--offset-timestamps-by-seconds" in result.stderr


async def test_a_conversation_longer_than_the_buffer_loses_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path, "")
    stored = await _fill(project)
    broker = create_event_broker(block(type="sql", db=str(tmp_path / "e.db"), max_buffer=3))
    assert broker is not None
    store = SQLStore(f"sqlite:///{project / '.chatbot' / 'conversations.db'}")
    try:
        conversations, events = await publish_stored(broker, store, ["ann"])
    finally:
        await broker.close()
        await store.close()
    assert (conversations, events) == (1, len(stored["ann"])) and len(stored["ann"]) > 6
    assert broker.dropped == 0 and broker.published == events
    assert [data for _, _, data in sqlite_rows(tmp_path / "e.db")] == [
        {"sender_id": "ann", **e} for e in stored["ann"]
    ]


async def test_a_broker_that_publishes_nothing_is_given_up(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    project = _project(
        tmp_path,
        "event_broker:\n  type: sql\n  dialect: postgresql\n  url: 127.0.0.1\n"
        f"  port: {port}\n  db: events\n  username: x\n",
    )
    await _fill(project)
    result = chatbot("export", "--project", str(project), "--timeout", "1")
    assert result.returncode == 1
    assert "nothing published for 1 s" in result.stderr and "Traceback" not in result.stderr


def test_without_a_broker_or_with_times_for_a_file_it_says_what_to_do(tmp_path: Path) -> None:
    project = _project(tmp_path, "")
    result = chatbot("export", "--project", str(project))
    assert result.returncode == 1 and "no event broker to export to" in result.stderr
    result = chatbot(
        "export", "--project", str(project), "--out", str(tmp_path / "x.jsonl"),
        "--minimum-timestamp", "0",
    )  # fmt: skip
    assert result.returncode == 1 and "leave out --out" in result.stderr
