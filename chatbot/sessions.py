"""Conversation sessions, as Rasa's: when a new one starts, and what is logged before
``action_session_start`` runs.

A session starts where none has since the latest restart, or where the last user message is older
than the domain's ``session_expiration_time``. The metadata of the message that starts it (if it
has any) is set on the ``session_started_metadata`` slot first (Rasa's
``MessageProcessor._update_tracker_session``), so a custom ``action_session_start`` can read it and
the default one carries it into the new session.
"""

from __future__ import annotations

import time
from typing import Any
from weakref import WeakKeyDictionary

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.project import domain as d


class SessionWatch:
    """Tells whether a conversation needs a new session, reading each event once per
    conversation object: a turn late in a long session does not re-read the session."""

    def __init__(self, domain: d.Domain) -> None:
        self.domain = domain
        # conversation -> (events read, whether a session started since the latest restart)
        self._marks: WeakKeyDictionary[Conversation, tuple[int, bool]] = WeakKeyDictionary()

    def needs_start(self, conversation: Conversation) -> bool:
        """As Rasa: no session since the latest restart, or the session has expired (a session
        without a user message never expires)."""
        if not self._in_session(conversation):
            return True
        config = self.domain.session_config
        if not config.expires:
            return False
        last_user = conversation.latest_user_event()
        if last_user is None:
            return False
        idle = time.time() - float(last_user.get("timestamp") or 0.0)
        return idle > config.session_expiration_time * 60

    def _in_session(self, conversation: Conversation) -> bool:
        """Whether a session started since the latest restart, reading only the events that
        came since the last call for this conversation object (events are only ever appended)."""
        scanned, in_session = self._marks.get(conversation, (0, False))
        events = conversation.events
        for event in events[scanned:] if scanned else events:
            if event.get("event") == "restart":
                in_session = False
            elif ev.is_action(event, d.ACTION_SESSION_START):
                in_session = True
        self._marks[conversation] = (len(events), in_session)
        return in_session


def start_metadata_events(metadata: dict[str, Any] | None) -> list[Event]:
    """The events logged before ``action_session_start``: the starting message's metadata on
    ``session_started_metadata``, where it has any."""
    if not metadata:
        return []
    return [ev.slot(d.SESSION_START_METADATA_SLOT, metadata)]
