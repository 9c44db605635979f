"""Reminders, as in Rasa: an action returns ``ReminderScheduled`` (a ``reminder`` event) and at its
time the bot acts as if the user had sent the reminder's intent (an external event), answering
through the conversation's latest channel; ``ReminderCancelled`` (``cancel_reminder``) cancels.

The scheduler keeps its timers in this process's memory, as Rasa's default scheduler does: a
reminder is lost when the server stops before it is due. A reminder with a name replaces the
conversation's earlier one of that name. ``kill_on_user_msg`` (the default): the reminder does not
fire if the user wrote after it was set. A reminder whose event a restart (or a new session) has
left behind does not fire either: as in Rasa, a session that expired before the reminder is due is
renewed first, which leaves it behind. The processor checks these when it fires
(``MessageProcessor.fire_reminder``, with ``why_not_due``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chatbot.conversation.events import Event
from chatbot.errors import ChatbotError

logger = logging.getLogger(__name__)

REMINDER = "reminder"
CANCEL_REMINDER = "cancel_reminder"
# Sleep in steps no longer than this: a timer for next year still notices the loop closing.
_MAX_SLEEP = 3600.0

Fire = Callable[[str, Event], Awaitable[None]]


def due_time(event: Mapping[str, Any]) -> float | None:
    """The reminder's time as a POSIX timestamp; None when ``date_time`` is not an ISO time. A
    time without a zone is the server's local time (as Rasa reads it)."""
    value = event.get("date_time")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.astimezone()  # local time
        return when.astimezone(timezone.utc).timestamp()
    except (ValueError, OverflowError):  # not ISO, or a time at the edge of the calendar
        return None


def entities_of(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A reminder's entities as entity objects: rasa-sdk sends a list of them or a name -> value
    mapping (Rasa accepts both)."""
    value = event.get("entities")
    if isinstance(value, dict):
        return [{"entity": str(k), "value": v} for k, v in value.items()]
    if isinstance(value, list):
        return [dict(e) for e in value if isinstance(e, dict) and isinstance(e.get("entity"), str)]
    return []


def _entity_key(entities: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(e.get("entity")), repr(e.get("value"))) for e in entities))


@dataclass
class _Job:
    conversation_id: str
    name: str
    intent: str
    entities: tuple[tuple[str, str], ...]
    task: asyncio.Task[None]


class ReminderScheduler:
    """Timers for the ``reminder`` events of conversations; ``fire(conversation_id, event)`` runs
    when one is due. ``notice`` is given every batch of new events (a processor listener)."""

    def __init__(self, fire: Fire, *, clock: Callable[[], float] | None = None) -> None:
        self._fire = fire
        self._clock = clock
        self._jobs: dict[tuple[str, str], _Job] = {}
        self.fired = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def notice(self, conversation_id: str, events: Iterable[Event]) -> None:
        for event in events:
            kind = event.get("event")
            if kind == REMINDER:
                self.schedule(conversation_id, event)
            elif kind == CANCEL_REMINDER:
                self.cancel(conversation_id, event)

    def schedule(self, conversation_id: str, event: Event) -> None:
        intent = event.get("intent")
        when = due_time(event)
        if not isinstance(intent, str) or not intent or when is None:
            logger.error(
                "conversation %s: a reminder needs an intent and an ISO date_time, got %r and %r; "
                "not scheduled",
                conversation_id,
                intent,
                event.get("date_time"),
            )
            return
        name = event.get("name")
        if not isinstance(name, str) or not name:
            name = f"unnamed-{uuid.uuid4()}"  # for the timer only; the event stays as it came
        self._drop((conversation_id, name))
        now = self._clock() if self._clock else datetime.now(timezone.utc).timestamp()
        task = asyncio.get_running_loop().create_task(
            self._wait(conversation_id, name, event, max(0.0, when - now))
        )
        self._jobs[(conversation_id, name)] = _Job(
            conversation_id, name, intent, _entity_key(entities_of(event)), task
        )
        logger.info(
            "conversation %s: reminder %s (%s) due in %.0f s",
            conversation_id,
            name,
            intent,
            max(0.0, when - now),
        )

    def cancel(self, conversation_id: str, event: Mapping[str, Any]) -> int:
        """Cancel the conversation's reminders the event names: by ``name``, else all of its
        ``intent`` (and ``entities``, when given). Returns how many were cancelled."""
        matching = [
            key
            for key, job in self._jobs.items()
            if job.conversation_id == conversation_id
            and cancels(event, job.name, job.intent, job.entities)
        ]
        for key in matching:
            self._drop(key)
        return len(matching)

    async def close(self) -> None:
        """Cancel every timer (the server is stopping)."""
        tasks = [job.task for job in self._jobs.values()]
        self._jobs.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _drop(self, key: tuple[str, str]) -> None:
        job = self._jobs.pop(key, None)
        if job is not None and job.task is not asyncio.current_task():
            job.task.cancel()

    async def _wait(self, conversation_id: str, name: str, event: Event, delay: float) -> None:
        while delay > 0:
            step = min(delay, _MAX_SLEEP)
            await asyncio.sleep(step)
            delay -= step
        self._jobs.pop((conversation_id, name), None)
        try:
            await self._fire(conversation_id, event)
            self.fired += 1
        except ChatbotError as exc:  # the store is down, no model is loaded, ...
            logger.error("conversation %s: reminder %s not fired: %s", conversation_id, name, exc)
        except Exception:  # a failed reminder must not take the scheduler down
            logger.exception("conversation %s: reminder %s failed", conversation_id, name)


def cancels(
    cancel: Mapping[str, Any],
    name: str | None,
    intent: str | None,
    entities: tuple[tuple[str, str], ...],
) -> bool:
    """Whether a ``cancel_reminder`` event cancels a reminder of this name, intent and entities:
    by ``name`` where it gives one, else by its ``intent`` (and ``entities``, when given)."""
    cancel_name, cancel_intent = cancel.get("name"), cancel.get("intent")
    if cancel_name:
        return name == cancel_name
    wanted = _entity_key(entities_of(cancel)) if cancel.get("entities") else None
    return (not cancel_intent or intent == cancel_intent) and (wanted is None or entities == wanted)


def called_off(reminder: Mapping[str, Any], later: Iterable[Mapping[str, Any]]) -> bool:
    """Whether events after a reminder cancel it, or set another of its name in its place. The
    timers do that in the process that set them; this reads it from the conversation, for a
    timer whose reminder was cancelled in another process (``chatbot run --workers``)."""
    name = reminder.get("name")
    intent = reminder.get("intent")
    entities = _entity_key(entities_of(reminder))
    for event in later:
        kind = event.get("event")
        if kind == REMINDER and name and event.get("name") == name:
            return True
        if kind == CANCEL_REMINDER and cancels(
            event, name if isinstance(name, str) else None, str(intent), entities
        ):
            return True
    return False


def same_reminder(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two ``reminder`` events are one (the one set, and the one in the store)."""
    return all(a.get(k) == b.get(k) for k in ("event", "intent", "date_time", "name", "timestamp"))


def why_not_due(
    reminder: Mapping[str, Any], applied: Sequence[Mapping[str, Any]], events: Sequence[Event]
) -> str | None:
    """Why a due reminder must not fire, or None: its event is not among the conversation's
    ``applied`` events (a restart or a new session left it behind: Rasa's
    ``_is_reminder_still_valid``), a later event cancelled it or set another of its name, or,
    with ``kill_on_user_msg`` (the default), the user wrote after it was set."""
    if not any(same_reminder(e, reminder) for e in applied):
        return "it no longer applies (a restart or a new session since)"
    at = max(i for i, e in enumerate(events) if same_reminder(e, reminder))
    later = events[at + 1 :]
    if called_off(reminder, later):
        return "it was cancelled"
    if reminder.get("kill_on_user_msg", True) and any(e.get("event") == "user" for e in later):
        return "the user wrote since"
    return None
