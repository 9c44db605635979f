"""The action interface: an action reads the conversation and returns the events it causes."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.conversation.responses import MESSAGE_KEYS, render
from chatbot.project.domain import Domain


@dataclass
class ActionContext:
    conversation: Conversation
    domain: Domain
    channel: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    # Runs another action by name and returns its events (forms use it for ask and validate
    # actions). Set by the processor.
    run_action: Callable[[str, Conversation], Awaitable[list[Event]]] | None = None

    def utter(self, response: str, **extra: Any) -> list[Event]:
        """The bot event for a domain response, or nothing if it has no applicable variation."""
        message = render(
            self.domain,
            response,
            self.conversation.slots,
            channel=self.channel,
            extra=extra,
            rng=self.rng,
        )
        if message is None:
            return []
        return [bot_event(message, response)]


def message_problem(message: dict[str, Any]) -> str | None:
    """What makes ``message`` (from an action server or an NLG server) no message a channel
    can send, or None: its ``text`` not a string, its ``metadata`` not an object, its buttons,
    quick replies or elements not a list."""
    text, metadata = message.get("text"), message.get("metadata")
    if text is not None and not isinstance(text, str):
        return f"its 'text' is not a string: {text!r:.60}"
    if metadata is not None and not isinstance(metadata, dict):
        return f"its 'metadata' is not an object: {metadata!r:.60}"
    for key in ("buttons", "quick_replies", "elements"):
        listed = message.get(key)
        if listed is not None and not isinstance(listed, list):
            return f"its '{key}' is not a list: {listed!r:.60}"
    return None


def bot_event(message: dict[str, Any], utter_action: str | None = None) -> Event:
    data = {k: message[k] for k in MESSAGE_KEYS if k != "text" and message.get(k) is not None}
    metadata: dict[str, Any] = dict(message.get("metadata") or {})
    if utter_action:
        metadata["utter_action"] = utter_action
    return ev.bot(message.get("text"), data, metadata)


class Action(ABC):
    """One extension point for everything the bot can do."""

    name: str

    @abstractmethod
    async def run(self, ctx: ActionContext) -> list[Event]:
        """The events this action causes (the processor logs the action event before them)."""
