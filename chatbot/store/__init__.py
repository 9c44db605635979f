"""Conversation stores (the append-only event log of each conversation) and conversation locks.

- ``ConversationStore``: ``InMemoryStore``; ``SQLStore`` on SQLite (the embedded default) or
  PostgreSQL. ``create_store`` reads endpoints.yml's ``tracker_store:`` block.
- ``LockStore``: ``InMemoryLockStore`` for one process, ``RedisLockStore`` across processes.
  ``create_lock_store`` reads the ``lock_store:`` block.
- ``export_jsonl`` / ``import_jsonl``: conversations as JSON Lines.
"""

from typing import TYPE_CHECKING

from chatbot.store.base import ConversationStore, StoredConversation
from chatbot.store.factory import (
    LOCK_STORE_TYPES,
    STORE_TYPES,
    create_lock_store,
    create_store,
)
from chatbot.store.jsonl import ImportReport, export_jsonl, import_jsonl
from chatbot.store.locks import ConversationLock, InMemoryLockStore, LockStore
from chatbot.store.memory import InMemoryStore
from chatbot.store.sql import SQLStore

if TYPE_CHECKING:
    from chatbot.store.redis_lock import RedisLockStore

__all__ = [
    "LOCK_STORE_TYPES",
    "STORE_TYPES",
    "ConversationLock",
    "ConversationStore",
    "ImportReport",
    "InMemoryLockStore",
    "InMemoryStore",
    "LockStore",
    "RedisLockStore",
    "SQLStore",
    "StoredConversation",
    "create_lock_store",
    "create_store",
    "export_jsonl",
    "import_jsonl",
]


def __getattr__(name: str) -> object:
    # redis-py takes a fifth of a second to import; only a Redis lock store needs it.
    if name == "RedisLockStore":
        from chatbot.store.redis_lock import RedisLockStore

        return RedisLockStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
