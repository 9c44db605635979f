"""Conversations to and from JSON Lines: one line per conversation,
``{"conversation_id": "...", "events": [<Rasa event JSON>, ...]}``, every session included.

``chatbot export`` and ``chatbot import`` are these two functions. An import only appends: a
conversation that already has events in the store is reported as a conflict and left as it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, cast

from chatbot.conversation.events import InvalidEvent, validate_events
from chatbot.errors import ConflictError
from chatbot.json_input import loads
from chatbot.store.base import ConversationStore, json_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """What ``import_jsonl`` did: the ids it wrote, the ids the store had already (left as they
    were), and ``file:line: problem`` for each line it could not read."""

    imported: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: int = 0


@contextmanager
def _opened(target: str | Path | TextIO, mode: str) -> Iterator[tuple[TextIO, str]]:
    if isinstance(target, str | Path):
        with open(target, mode, encoding="utf-8", newline="\n" if "w" in mode else None) as f:
            yield cast(TextIO, f), str(target)
    else:
        yield target, getattr(target, "name", "<stream>")


async def export_jsonl(
    store: ConversationStore,
    target: str | Path | TextIO,
    conversation_ids: Iterable[str] | None = None,
) -> int:
    """Write each conversation (all of them by default) as one line; the number written.

    A requested id the store does not have is skipped with a warning.
    """
    ids = list(conversation_ids) if conversation_ids is not None else await store.conversation_ids()
    written = 0
    with _opened(target, "w") as (stream, _name):
        for conversation_id in ids:
            conversation = await store.load(conversation_id, all_sessions=True)
            if not conversation.events:
                logger.warning("export: no conversation '%s' in the store", conversation_id)
                continue
            line = {"conversation_id": conversation_id, "events": conversation.events}
            stream.write(json_text(line) + "\n")
            written += 1
    return written


async def import_jsonl(store: ConversationStore, source: str | Path | TextIO) -> ImportReport:
    """Append each line's conversation to the store, from seq 0."""
    report = ImportReport()
    events_written = 0
    with _opened(source, "r") as (stream, name):
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            where = f"{name}:{number}"
            try:
                line = loads(text)
            except json.JSONDecodeError as error:
                report.errors.append(f"{where}: not JSON ({error.msg})")
                continue
            except ValueError as error:  # NaN, nested too deeply
                report.errors.append(f"{where}: not JSON ({error})")
                continue
            conversation_id = line.get("conversation_id") if isinstance(line, dict) else None
            events = line.get("events") if isinstance(line, dict) else None
            if not isinstance(conversation_id, str) or not conversation_id:
                report.errors.append(f"{where}: no 'conversation_id'")
                continue
            if not isinstance(events, list) or not events:
                report.errors.append(f"{where}: conversation '{conversation_id}' has no 'events'")
                continue
            try:
                events = validate_events(events, "events")
            except InvalidEvent as error:  # what later turns would fail on, never stored
                report.errors.append(f"{where}: conversation '{conversation_id}': {error}")
                continue
            try:
                await store.append(conversation_id, events, start_seq=0)
            except ConflictError:
                report.conflicts.append(conversation_id)
                continue
            except ValueError as error:
                report.errors.append(f"{where}: conversation '{conversation_id}': {error}")
                continue
            report.imported.append(conversation_id)
            events_written += len(events)
    return ImportReport(report.imported, report.conflicts, report.errors, events_written)
