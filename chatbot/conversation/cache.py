"""The conversations one process keeps between turns (``MessageProcessor``'s cache): the last
session of each, with its state derived, so the next turn does not replay it from the store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from chatbot.conversation.conversation import Conversation


@dataclass
class CachedConversation:
    conversation: Conversation
    next_seq: int  # the store's next seq when ``conversation`` was last saved


class ConversationCache:
    """The last session of recently answered conversations, least recently used out first.

    An entry is taken out while its conversation is in a turn and put back only after the turn's
    events are stored, so a turn that fails never leaves a conversation the store does not have.
    Entries are checked against the store's next seq: the log is append-only, so a conversation
    whose log still ends where this process left it holds the same events.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, CachedConversation] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.caught_up = 0  # entries brought up to date with what other processes appended

    def take(self, conversation_id: str) -> CachedConversation | None:
        return self._entries.pop(conversation_id, None)

    def put(self, conversation_id: str, conversation: Conversation, next_seq: int) -> None:
        if self.size <= 0:
            return
        self._entries[conversation_id] = CachedConversation(conversation, next_seq)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._entries
