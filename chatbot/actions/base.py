"""The action interface: an action reads the conversation and returns the events it causes."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.conversation.responses import MESSAGE_KEYS, render
from chatbot.project.domain import Domain

if TYPE_CHECKING:
    from chatbot.actions.nlg import NLGClient


@dataclass
class ActionContext:
    conversation: Conversation
    domain: Domain
    channel: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    # Runs another action by name and returns its events (forms use it for ask and validate
    # actions). Set by the processor.
    run_action: Callable[[str, Conversation], Awaitable[list[Event]]] | None = None
    # The NLG server that words the responses (endpoints.yml ``nlg:``), where there is one.
    nlg: NLGClient | None = None

    def utter(self, response: str) -> list[Event]:
        """The bot event for a domain response (never an NLG server's), or nothing if it has no
        applicable variation."""
        message = self.domain_message(response, {})
        return [] if message is None else [bot_event(message, response)]

    async def respond(self, response: str, given: Mapping[str, Any] | None = None) -> list[Event]:
        """The bot event an action sends for ``response``, as Rasa's actions ask their NLG: the
        NLG server's wording where there is one (asked whatever the domain has, see
        ``chatbot.actions.nlg``), else the domain's; nothing where neither gives a message.
        ``given`` are a custom action's other keys (rasa-sdk's ``utter_message(response=...,
        name="Joe", buttons=[...])``), added to the message by ``with_given``."""
        if self.nlg is not None:
            message = await self.nlg.respond(self, response, given or {})
        else:
            message = self.domain_message(response, given or {})
        return [] if message is None else [bot_event(message, response)]

    def domain_message(self, response: str, given: Mapping[str, Any]) -> dict[str, Any] | None:
        """The domain's message for ``response``, filled from the slots and ``given`` (which
        it is then merged with), or None where the domain has no variation that applies."""
        message = render(
            self.domain,
            response,
            self.conversation.slots,
            channel=self.channel,
            extra=given,
            rng=self.rng,
        )
        return None if message is None else with_given(message, given)


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


def with_given(message: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` (the domain's or an NLG server's) with a custom action's other keys, as
    Rasa's RemoteAction merges them: its buttons after the message's, its keys that are set
    (text, image, ...) in place of the message's, and keys of no message (``mood="happy"``)
    in the metadata, as Rasa's create_bot_utterance keeps them."""
    merged = dict(message)
    buttons = given.get("buttons") or []
    if buttons:
        merged["buttons"] = [*(merged.get("buttons") or []), *buttons]
    merged.update({k: v for k, v in given.items() if v and k in MESSAGE_KEYS and k != "buttons"})
    return with_metadata(merged, given)


def with_metadata(message: dict[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` with the entries of ``keys`` that are no message keys, and what is inside
    ``keys["metadata"]``, added to the message's metadata."""
    rest = {k: v for k, v in keys.items() if k not in (*MESSAGE_KEYS, "metadata")}
    if rest or keys.get("metadata"):
        message["metadata"] = {
            **(message.get("metadata") or {}),
            **rest,
            **(keys.get("metadata") or {}),
        }
    return message


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
