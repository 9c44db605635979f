"""One conversation, event-sourced: everything about it is derived by replaying its events.

Events are appended, never edited. ``restart``, ``session_started``, ``rewind`` and ``undo`` change
what the *applied* events are (as in Rasa): the state is then rebuilt by replaying them. The
dialogue state before every action is kept as it is appended, so predicting the next action never
re-reads the whole conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.conversation.state import State, entity_features, make_state
from chatbot.project.domain import (
    ACTION_LISTEN,
    ACTION_SESSION_START,
    ACTION_TWO_STAGE_FALLBACK,
    DEFAULT_SLOTS,
    Domain,
)

logger = logging.getLogger(__name__)

# Events that end everything before them, as far as the dialogue state is concerned.
_RESETTING = ("restart", "session_started")

# What stored conversations name that the domain lacks (a bot retrained without a form or a
# slot), said once per name: every load of such a conversation replays the same events.
_SAID: set[str] = set()
_MAX_SAID = 1_000


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key in _SAID:
        return
    if len(_SAID) < _MAX_SAID:
        _SAID.add(key)
    logger.warning(message, *args)


@dataclass
class LoopState:
    name: str | None = None
    is_interrupted: bool = False
    rejected: bool = False
    trigger_message: dict[str, Any] | None = None


class Conversation:
    """The event log of one conversation and the state derived from it."""

    def __init__(self, sender_id: str, domain: Domain, events: Iterable[Event] = ()) -> None:
        self.sender_id = sender_id
        self.domain = domain
        self.events: list[Event] = []
        # ``current_state()`` until the next event is applied (the policies, the processor and
        # the next action's ``states`` entry all ask for it between two events).
        self._state: State | None = None
        self._reset()
        for event in events:
            self.append(event)

    # -- derived state ---------------------------------------------------------------------------

    def _reset(self) -> None:
        self.slots: dict[str, Any] = _initial_slots(self.domain)
        self.loop = LoopState()
        self.latest_message: dict[str, Any] = {}
        # The user message the dialogue state reads: the latest one, but where a form's turns
        # on its happy path are collapsed for the policies, the one before them (as Rasa's
        # states come from ``applied_events()`` while its ``latest_message`` stays the latest).
        self.state_message: dict[str, Any] = self.latest_message
        self.latest_action_name: str | None = None
        self.latest_bot_event: Event | None = None
        self.followup_action: str | None = None
        self.paused = False
        # The dialogue state before each applied action, in order.
        self.states: list[State] = []
        self._user_seen = False
        # The applied events since the last reset, kept as events arrive (see applied_events).
        self._applied: list[Event] = []

    def fork(self) -> Conversation:
        """A copy that can be extended without touching this one (no replay: state is copied)."""
        other = Conversation.__new__(Conversation)
        other.sender_id = self.sender_id
        other.domain = self.domain
        other.events = list(self.events)
        other.slots = dict(self.slots)
        other.loop = LoopState(**vars(self.loop))
        other.latest_message = self.latest_message
        other.state_message = self.state_message
        other.latest_action_name = self.latest_action_name
        other.latest_bot_event = self.latest_bot_event
        other.followup_action = self.followup_action
        other.paused = self.paused
        other.states = list(self.states)
        other._user_seen = self._user_seen
        other._applied = list(self._applied)
        other._state = self._state
        return other

    def _reset_slots(self) -> None:
        self.slots = _initial_slots(self.domain)

    def append(self, event: Event) -> None:
        self.events.append(event)
        self._apply(event)

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.append(event)

    def _apply(self, event: Event) -> None:
        try:
            self._apply_event(event)
        finally:
            self._state = None  # every change of the derived state goes through here

    def _apply_event(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "action" and self.is_loop_rerun(event["name"]):
            self._collapse_loop_turns(event["name"])
            self.followup_action = None
            self.loop.rejected = False
            self.loop.is_interrupted = False
            return
        if kind not in ("restart", "session_started", "rewind", "undo"):
            self._applied.append(event)
        if kind == "user":
            self.latest_message = self.state_message = _parse_data(event)
            self.followup_action = None
            self._user_seen = True
        elif kind == "action":
            name = event["name"]
            self.states.append(self.current_state())
            self.latest_action_name = name
            self.followup_action = None
            if self.loop.name:
                # As Rasa's ``set_latest_action``: any action run while a loop is active ends
                # its interruption (the form validates again); the loop itself running again
                # ends its rejection.
                self.loop.is_interrupted = False
                if self.loop.name == name:
                    self.loop.rejected = False
        elif kind == "bot":
            self.latest_bot_event = event
        elif kind == "slot":
            if event["name"] in self.slots:  # Rasa: no slot is made up
                self.slots[event["name"]] = event.get("value")
            else:
                _warn_once(
                    f"slot {event['name']}",
                    "conversation %s: slot %r is not in the domain; its value is not kept (was "
                    "the bot retrained without it?)",
                    self.sender_id,
                    event["name"],
                )
        elif kind in ("active_loop", "form"):
            name = event.get("name")
            if name is not None and not (isinstance(name, str) and self._is_loop(name)):
                # A form the domain lacks would be predicted and fail on every message (a
                # conversation stored mid-form, then the bot retrained without that form):
                # the conversation goes on without it.
                _warn_once(
                    f"form {name}",
                    "conversation %s: its active form %r is not in the domain (was the bot "
                    "retrained without it?); the conversation goes on without an active form",
                    self.sender_id,
                    name,
                )
                name = None
            self.loop = LoopState(name=name, trigger_message=self.latest_message if name else None)
        elif kind == "loop_interrupted":
            self.loop.is_interrupted = bool(event.get("is_interrupted"))
        elif kind == "form_validation":
            self.loop.is_interrupted = not bool(event.get("validate", True))
        elif kind == "action_execution_rejected":
            if self.loop.name and event.get("name") == self.loop.name:
                self.loop.rejected = True
        elif kind == "restart":
            self._reset()
            self.followup_action = ACTION_SESSION_START
        elif kind == "session_started":
            self._reset()
        elif kind in ("rewind", "undo"):
            self._replay()
        elif kind == "reset_slots":
            self._reset_slots()
        elif kind == "followup":
            self.followup_action = event["name"]
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "entities" and self.latest_action_name == ACTION_LISTEN:
            # As Rasa's EntitiesAdded: only right after the user spoke, and each entity once.
            found = self.latest_message.setdefault("entities", [])
            found.extend(e for e in event.get("entities") or [] if e not in found)

    def _replay(self) -> None:
        """Rebuild the derived state from the applied events (after a rewind or an undo)."""
        applied = self.applied_events()
        self._reset()
        for event in applied:
            self._apply(event)

    def applied_events(self) -> list[Event]:
        """The events that still count, as Rasa's ``applied_events``: those after the last
        restart or session start, with rewound and undone turns taken out, and the turns between
        two runs of a form on its happy path collapsed into the first run (the policies see a
        form collecting its slots as one step, however many questions it asked)."""
        if self.events and self.events[-1].get("event") not in ("rewind", "undo"):
            return list(self._applied)
        applied: list[Event] = []
        for event in self.events:
            kind = event.get("event")
            if kind in _RESETTING:
                applied = []
            elif kind == "undo":
                _undo_till(applied, lambda e: e.get("event") == "action")
            elif kind == "rewind":
                _undo_till(applied, lambda e: e.get("event") == "user")
                _undo_till(applied, lambda e: ev.is_action(e, ACTION_LISTEN))
            elif kind == "action" and _is_loop_rerun(event["name"], self._loop_names(), applied):
                _undo_till_previous_run(event["name"], applied)
            else:
                applied.append(event)
        return applied

    def _loop_names(self) -> set[str]:
        return {*self.domain.forms, ACTION_TWO_STAGE_FALLBACK}

    def _is_loop(self, name: str) -> bool:
        return name in self.domain.forms or name == ACTION_TWO_STAGE_FALLBACK

    def is_loop_rerun(self, action: str) -> bool:
        """Whether running ``action`` now is a form running again on its happy path, a step the
        policies' history leaves out."""
        return _is_loop_rerun(action, self._loop_names(), self._applied)

    def _collapse_loop_turns(self, action: str) -> None:
        removed = _undo_till_previous_run(action, self._applied)
        actions = sum(1 for e in removed if e.get("event") == "action")
        if actions:
            del self.states[-actions:]
        if any(e.get("event") == "user" for e in removed):
            latest = next((e for e in reversed(self._applied) if e.get("event") == "user"), None)
            self._user_seen = latest is not None
            self.state_message = _parse_data(latest) if latest is not None else {}
        self.latest_action_name = action

    # -- views -----------------------------------------------------------------------------------

    @property
    def active_loop_name(self) -> str | None:
        return self.loop.name

    @property
    def latest_intent(self) -> str | None:
        intent = self.latest_message.get("intent") or {}
        name = intent.get("name")
        return name if isinstance(name, str) else None

    @property
    def latest_user_text(self) -> str | None:
        text = self.latest_message.get("text")
        return text if isinstance(text, str) else None

    @property
    def latest_entities(self) -> list[dict[str, Any]]:
        return list(self.latest_message.get("entities") or [])

    def current_state(self) -> State:
        """The dialogue state now, i.e. before the next action (built once per event applied)."""
        if self._state is None:
            self._state = self._build_state()
        return self._state

    def _build_state(self) -> State:
        message = self.state_message if self._user_seen else {}
        name = (message.get("intent") or {}).get("name")
        intent = name if isinstance(name, str) else None
        text = message.get("text")
        entities = (
            entity_features(self.domain, intent, list(message.get("entities") or []))
            if self._user_seen
            else frozenset()
        )
        return make_state(
            self.domain,
            intent=intent,
            entities=entities,
            text=text if isinstance(text, str) else None,
            prev_action=self.latest_action_name,
            slots=self.slots,
            active_loop=self.loop.name,
        )

    def recent_states(self, n: int) -> list[State]:
        """The last ``n`` states of ``past_states()`` (the current one last), copying only those."""
        if n <= 0:
            return []
        earlier = self.states[max(0, len(self.states) - (n - 1)) :] if n > 1 else []
        return [*earlier, self.current_state()]

    @property
    def num_states(self) -> int:
        """``len(past_states())``."""
        return len(self.states) + 1

    def past_states(self) -> list[State]:
        """The state before each applied action so far, then the current state."""
        return [*self.states, self.current_state()]

    def events_after_latest_restart(self) -> list[Event]:
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i].get("event") == "restart":
                return self.events[i + 1 :]
        return list(self.events)

    def latest_user_event(self) -> Event | None:
        for event in reversed(self.events):
            if event.get("event") == "user":
                return event
        return None

    def events_since_latest_user(self) -> list[Event]:
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i].get("event") == "user":
                return self.events[i + 1 :]
        return list(self.events)

    def as_tracker(self) -> dict[str, Any]:
        """Rasa's tracker JSON (rasa-sdk's ``tracker`` and ``GET /conversations/{id}/tracker``)."""
        latest_input_channel = None
        latest_event_time = self.events[-1].get("timestamp") if self.events else None
        user_event = self.latest_user_event()
        if user_event is not None:
            latest_input_channel = user_event.get("input_channel")
        return {
            "sender_id": self.sender_id,
            "slots": dict(self.slots),
            "latest_message": self.latest_message or _no_message(),
            "latest_event_time": latest_event_time,
            "followup_action": self.followup_action,
            "paused": self.paused,
            "events": list(self.events),
            "latest_input_channel": latest_input_channel,
            "active_loop": (
                {
                    "name": self.loop.name,
                    "is_interrupted": self.loop.is_interrupted,
                    "rejected": self.loop.rejected,
                    "trigger_message": self.loop.trigger_message,
                }
                if self.loop.name
                else {}
            ),
            "latest_action": {"action_name": self.latest_action_name}
            if self.latest_action_name
            else {},
            "latest_action_name": self.latest_action_name,
        }


def _initial_slots(domain: Domain) -> dict[str, Any]:
    """The domain's slots at their initial values, then the slots every conversation has."""
    slots = {n: s.initial_value for n, s in domain.slots.items()}
    for name in DEFAULT_SLOTS:
        slots.setdefault(name, None)
    return slots


def _no_message() -> dict[str, Any]:
    """``latest_message`` in the tracker JSON before any user message: Rasa's
    ``UserUttered.empty()``, so an action reading ``tracker.latest_message["text"]`` gets None."""
    return {"intent": {}, "entities": [], "text": None, "message_id": None, "metadata": {}}


def _parse_data(event: Event) -> dict[str, Any]:
    parse = dict(event.get("parse_data") or {})
    parse.setdefault("text", event.get("text"))
    parse["entities"] = list(parse.get("entities") or [])
    return parse


def _is_loop_rerun(action: str, loops: set[str], applied: list[Event]) -> bool:
    """Rasa's happy-path test: ``action`` is a form that ran before in this stretch of the
    conversation, with no rejection of it and no other answer to a user message since."""
    if action not in loops:
        return False
    next_action: str | None = None
    for event in reversed(applied):
        kind = event.get("event")
        if kind == "active_loop" and event.get("name") is None:
            return False  # a new run of the form, not a continuation
        if kind == "action_execution_rejected" and event.get("name") == action:
            return False
        if kind == "user" and next_action is not None and next_action != action:
            return False  # the user was answered by something else: an unhappy path
        if kind == "action":
            if event["name"] == action:
                return True
            next_action = event["name"]
    return False


def _undo_till_previous_run(action: str, applied: list[Event]) -> list[Event]:
    """Remove the action and user events after the previous run of ``action`` (other events,
    such as the slots the user gave, stay); the removed events, in order."""
    removed: list[Event] = []
    index = len(applied) - 1
    while index >= 0:
        event = applied[index]
        kind = event.get("event")
        if kind == "action" and event["name"] == action:
            break
        if kind in ("action", "user"):
            removed.append(applied.pop(index))
        index -= 1
    removed.reverse()
    return removed


def _undo_till(applied: list[Event], is_target: Any) -> None:
    while applied:
        if is_target(applied.pop()):
            return
