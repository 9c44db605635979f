"""One user message, end to end.

lock -> load -> session start -> NLU -> slot extraction -> predict/run actions until
``action_listen`` -> save -> reply. The new events are committed to the store before the reply is
returned, so a reply the user saw is never lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chatbot.actions.base import ActionContext, bot_event
from chatbot.actions.extract_slots import custom_mapping_actions, extract_slots
from chatbot.actions.registry import ActionRegistry
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event, InvalidEvent
from chatbot.conversation.messages import UserMessage, bot_messages
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.policy import Prediction
from chatbot.errors import ActionError, ActionRejected
from chatbot.project import domain as d
from chatbot.store.base import ConversationStore

logger = logging.getLogger(__name__)

DEFAULT_MAX_ACTIONS = 10
ACTION_FAILED_RESPONSE = "utter_action_failed"
ACTION_FAILED_TEXT = "Sorry, something went wrong on my side. Please try again in a moment."
# The text of a user event made by ``trigger_intent`` (Rasa's external events).
EXTERNAL_MESSAGE_PREFIX = "EXTERNAL: "

Parser = Callable[[str], Awaitable[dict[str, Any]]]


class LockStore(Protocol):
    def lock(self, conversation_id: str) -> Any: ...


@dataclass
class TurnResult:
    conversation: Conversation
    new_events: list[Event]

    def messages(self) -> list[dict[str, Any]]:
        return bot_messages(self.new_events, self.conversation.sender_id)


class MessageProcessor:
    def __init__(
        self,
        domain: d.Domain,
        parse: Parser,
        ensemble: PolicyEnsemble,
        actions: ActionRegistry,
        store: ConversationStore,
        locks: LockStore,
        *,
        max_actions: int = DEFAULT_MAX_ACTIONS,
        rng: random.Random | None = None,
    ) -> None:
        self.domain = domain
        self.parse = parse
        self.ensemble = ensemble
        self.actions = actions
        self.store = store
        self.locks = locks
        self.max_actions = max_actions
        self.rng = rng or random.Random()

    async def handle_message(self, message: UserMessage) -> list[dict[str, Any]]:
        result = await self.handle(message)
        return result.messages()

    async def handle(self, message: UserMessage) -> TurnResult:
        async def turn(conversation: Conversation) -> None:
            # Parsed under the conversation's lock: the lock's FIFO order is the order messages
            # came in, which a slow parse of an earlier message must not change.
            parse_data = await self.parse(message.text)
            await self._log_user(conversation, message, parse_data)
            await self.predict_and_run(conversation, message.input_channel)

        return await self.update(
            message.sender_id, turn, channel=message.input_channel, metadata=message.metadata
        )

    async def update(
        self,
        conversation_id: str,
        change: Callable[[Conversation], Awaitable[None]],
        *,
        channel: str | None = None,
        metadata: dict[str, Any] | None = None,
        start_session: bool = True,
        all_sessions: bool = False,
    ) -> TurnResult:
        """lock -> load -> session start (if needed) -> ``change`` -> save the new events."""
        async with self.locks.lock(conversation_id):
            stored = await self.store.load(conversation_id, all_sessions=all_sessions)
            conversation = Conversation(conversation_id, self.domain, stored.events)
            start = len(conversation.events)
            if start_session:
                await self.start_session_if_needed(conversation, metadata, channel)
            await change(conversation)
            new_events = conversation.events[start:]
            if new_events:
                await self.store.append(conversation_id, new_events, start_seq=stored.next_seq)
        return TurnResult(conversation, new_events)

    async def _log_user(
        self, conversation: Conversation, message: UserMessage, parse_data: dict[str, Any]
    ) -> None:
        conversation.append(
            ev.user(
                message.text,
                parse_data,  # type: ignore[arg-type]
                input_channel=message.input_channel,
                message_id=message.message_id,
                metadata=message.metadata,
            )
        )
        conversation.extend(extract_slots(conversation, self.domain))
        for action in custom_mapping_actions(conversation, self.domain):
            # ``type: custom`` mappings with ``action:``: the action fills the slot.
            ctx = self._context(conversation, message.input_channel)
            try:
                events = await self.actions.get(action).run(ctx)
            except (ActionError, ActionRejected) as exc:
                logger.error("conversation %s: slot mapping %s", conversation.sender_id, exc)
                continue
            conversation.extend(e for e in events if e.get("event") in ("slot", "bot"))

    async def log_message(
        self, message: UserMessage, parse_data: dict[str, Any] | None = None, **kwargs: Any
    ) -> TurnResult:
        """Log a user message (parsed, slots extracted) without predicting an answer
        (``POST /conversations/{id}/messages``)."""
        if parse_data is None:
            parse_data = await self.parse(message.text)
        parsed = parse_data

        async def log(conversation: Conversation) -> None:
            await self._log_user(conversation, message, parsed)

        return await self.update(
            message.sender_id,
            log,
            channel=message.input_channel,
            metadata=message.metadata,
            **kwargs,
        )

    async def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: list[dict[str, Any]],
        channel: str | None = None,
        **kwargs: Any,
    ) -> TurnResult:
        """Act as if the user sent ``intent`` with ``entities`` (Rasa's external event), then
        predict and run actions until the bot listens."""
        parse_data = {
            "intent": {"name": intent, "confidence": 1.0},
            "entities": entities,
            "intent_ranking": [{"name": intent, "confidence": 1.0}],
        }
        message = UserMessage(f"{EXTERNAL_MESSAGE_PREFIX}{intent}", conversation_id, channel)

        async def turn(conversation: Conversation) -> None:
            await self._log_user(conversation, message, parse_data)
            await self.predict_and_run(conversation, channel)

        return await self.update(conversation_id, turn, channel=channel, **kwargs)

    async def execute(
        self,
        conversation_id: str,
        action: str,
        *,
        policy: str | None = None,
        confidence: float | None = None,
        channel: str | None = None,
        **kwargs: Any,
    ) -> TurnResult:
        """Run one action now, as if a policy had predicted it (``POST .../execute``)."""
        prediction = Prediction(action, 1.0 if confidence is None else confidence, policy or "", 0)

        async def run(conversation: Conversation) -> None:
            outcome = await self.run_action(action, conversation, prediction, channel)
            if outcome == "stop":
                conversation.append(ev.action(d.ACTION_LISTEN, "processor", 1.0))

        return await self.update(conversation_id, run, channel=channel, **kwargs)

    async def append_events(
        self, conversation_id: str, events: list[Event], **kwargs: Any
    ) -> TurnResult:
        """Append events from outside (``POST .../tracker/events``), checked by replaying them
        on the conversation before anything is stored."""

        async def append(conversation: Conversation) -> None:
            try:
                conversation.extend(events)
                conversation.current_state()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidEvent(
                    f"the events do not apply to the conversation ({exc!r})"
                ) from None

        return await self.update(conversation_id, append, start_session=False, **kwargs)

    async def start_session_if_needed(
        self, conversation: Conversation, metadata: dict[str, Any] | None, channel: str | None
    ) -> None:
        if self._needs_session_start(conversation):
            await self.run_action(
                d.ACTION_SESSION_START,
                conversation,
                Prediction(d.ACTION_SESSION_START, 1.0, "session", 0),
                channel,
            )

    def _needs_session_start(self, conversation: Conversation) -> bool:
        """As Rasa: no session since the latest restart, or the session has expired."""
        since_restart = conversation.events_after_latest_restart()
        if not any(ev.is_action(e, d.ACTION_SESSION_START) for e in since_restart):
            return True
        config = self.domain.session_config
        if not config.expires:
            return False
        last_user = conversation.latest_user_event()
        if last_user is None:
            return False
        idle = time.time() - float(last_user.get("timestamp") or 0.0)
        return idle > config.session_expiration_time * 60

    async def predict_and_run(self, conversation: Conversation, channel: str | None) -> None:
        """Predict and run actions until the bot listens (at most ``max_actions``)."""
        excluded: set[str] = set()
        for _ in range(self.max_actions):
            if conversation.followup_action:
                name = conversation.followup_action
                prediction = Prediction(name, 1.0, "followup", 0)
            else:
                prediction = self.ensemble.predict(conversation, excluded)
            if prediction.action == d.ACTION_LISTEN:
                conversation.append(
                    ev.action(d.ACTION_LISTEN, prediction.policy, prediction.confidence)
                )
                return
            outcome = await self.run_action(prediction.action, conversation, prediction, channel)
            if outcome == "rejected":
                excluded.add(prediction.action)
                continue
            excluded.clear()
            if outcome == "stop":
                conversation.append(ev.action(d.ACTION_LISTEN, "processor", 1.0))
                return
            if outcome == "listened":
                return
        logger.warning(
            "conversation %s: %d actions in a row without listening; listening now",
            conversation.sender_id,
            self.max_actions,
        )
        conversation.append(ev.action(d.ACTION_LISTEN, "processor", 1.0))

    async def run_action(
        self, name: str, conversation: Conversation, prediction: Prediction, channel: str | None
    ) -> str:
        """Run one action and log it: "ok", "rejected", "stop" (the bot must listen now) or
        "listened" (the action's own events end with a listen, as a session start's do)."""
        action = self.actions.get(name)
        ctx = self._context(conversation, channel)
        try:
            events = await action.run(ctx)
        except ActionRejected as exc:
            logger.debug("%s", exc)
            conversation.append(ev.action_rejected(name, prediction.policy, prediction.confidence))
            return "rejected"
        except ActionError as exc:
            logger.error("conversation %s: %s", conversation.sender_id, exc)
            conversation.extend(self._failure_events(ctx))
            return "stop"
        conversation.append(
            ev.action(
                name,
                prediction.policy,
                prediction.confidence,
                hide_rule_turn=prediction.hide_rule_turn,
            )
        )
        conversation.extend(events)
        if any(e.get("event") == "rewind" for e in events):
            return "stop"
        if events and ev.is_action(events[-1], d.ACTION_LISTEN):
            return "listened"
        return "ok"

    def _context(self, conversation: Conversation, channel: str | None) -> ActionContext:
        async def run_sub_action(name: str, scratch: Conversation) -> list[Event]:
            return await self.actions.get(name).run(self._context(scratch, channel))

        return ActionContext(conversation, self.domain, channel, self.rng, run_sub_action)

    def _failure_events(self, ctx: ActionContext) -> list[Event]:
        if ACTION_FAILED_RESPONSE in self.domain.responses:
            events = ctx.utter(ACTION_FAILED_RESPONSE)
            if events:
                return events
        return [bot_event({"text": ACTION_FAILED_TEXT}, ACTION_FAILED_RESPONSE)]
