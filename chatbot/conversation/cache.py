"""The conversations one process keeps between turns (``MessageProcessor``'s cache): the last
session of each, with its state derived, so the next turn does not replay it from the store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from chatbot.conversation.conversation import Conversation

# The events all cached conversations may hold together (about 1 KB each with their derived
# state): a few very long sessions must not take the memory that many short ones would.
DEFAULT_MAX_CACHED_EVENTS = 200_000


@dataclass
class CachedConversation:
    conversation: Conversation
    next_seq: int  # the store's next seq when ``conversation`` was last saved
    events: int = 0  # how many events it held when it was put in


class ConversationCache:
    """The last session of recently answered conversations, least recently used out first.

    An entry is taken out while its conversation is in a turn and put back only after the turn's
    events are stored, so a turn that fails never leaves a conversation the store does not have.
    Entries are checked against the store's next seq: the log is append-only, so a conversation
    whose log still ends where this process left it holds the same events. Bounded twice: at
    most ``size`` conversations and ``max_events`` events in all (a session longer than that is
    not kept; its turns replay it from the store).
    """

    def __init__(self, size: int, max_events: int = DEFAULT_MAX_CACHED_EVENTS) -> None:
        self.size = size
        self.max_events = max_events
        self.events = 0  # the events the entries hold
        self._entries: OrderedDict[str, CachedConversation] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.caught_up = 0  # entries brought up to date with what other processes appended

    def take(self, conversation_id: str) -> CachedConversation | None:
        entry = self._entries.pop(conversation_id, None)
        if entry is not None:
            self.events -= entry.events
        return entry

    def put(self, conversation_id: str, conversation: Conversation, next_seq: int) -> None:
        self.take(conversation_id)
        held = len(conversation.events)
        if self.size <= 0 or held > self.max_events:
            return
        self._entries[conversation_id] = CachedConversation(conversation, next_seq, held)
        self.events += held
        while len(self._entries) > self.size or self.events > self.max_events:
            self.events -= self._entries.popitem(last=False)[1].events

    def clear(self) -> None:
        self._entries.clear()
        self.events = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._entries
