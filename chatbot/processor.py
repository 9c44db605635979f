"""One user message, end to end.

lock -> load -> session start -> NLU -> slot extraction -> predict/run actions until
``action_listen`` -> save -> reply. The new events are committed to the store before the reply is
returned, so a reply the user saw is never lost.

"load" is cheap for a conversation this process answered last: its ``Conversation`` (events
replayed, state derived) stays in a bounded LRU cache, and is reused when the store's next seq is
still the one this process wrote (one small read, under the conversation's lock). A write by
anyone else (another process behind the same load balancer, the HTTP API of another) moves the
store on: the events appended since are read and applied to the cached conversation (its last
cached event checked against the store's), and only where that cannot be done (a new session, a
log replaced under the same id) is the conversation loaded and replayed in full. So a turn costs
the same at turn 5 and at turn 500 of a session, on one process or several.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chatbot import turn_debug
from chatbot.actions.base import ActionContext, bot_event
from chatbot.actions.extract_slots import extracted_slots
from chatbot.actions.nlg import NLGClient
from chatbot.actions.registry import ActionRegistry
from chatbot.conversation import events as ev
from chatbot.conversation.cache import CachedConversation, ConversationCache
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event, InvalidEvent
from chatbot.conversation.messages import UserMessage, bot_messages, output_channel
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.dialogue.policy import Prediction
from chatbot.errors import ActionError, ActionRejected
from chatbot.external_events import external_user_event, latest_input_channel
from chatbot.project import domain as d
from chatbot.reminders import entities_of, why_not_due
from chatbot.sessions import SessionWatch, start_metadata_events
from chatbot.store.base import ConversationStore, is_session_start

logger = logging.getLogger(__name__)

# Actions a turn may run without listening (Rasa's MAX_NUMBER_OF_PREDICTIONS, which sets it).
DEFAULT_MAX_ACTIONS = 10
MAX_ACTIONS_ENV = "MAX_NUMBER_OF_PREDICTIONS"
FOLLOWUP_POLICY = "followup_action"  # the policy an action run as a FollowupAction is logged with
# Conversations whose derived state one process keeps between turns (0: none).
DEFAULT_CONVERSATION_CACHE_SIZE = 1_000
ACTION_FAILED_RESPONSE = "utter_action_failed"
ACTION_FAILED_TEXT = "Sorry, something went wrong on my side. Please try again in a moment."

Parser = Callable[[str], Awaitable[dict[str, Any]]]
Listener = Callable[[str, list[Event]], None]


class LockStore(Protocol):
    def lock(self, conversation_id: str) -> Any: ...


def max_actions_from_env() -> int:
    """``MAX_NUMBER_OF_PREDICTIONS`` where it is set (a whole number of at least 1), else
    ``DEFAULT_MAX_ACTIONS``; a bad value is warned about (once) and the default used."""
    return _max_actions(os.environ.get(MAX_ACTIONS_ENV))


@functools.cache
def _max_actions(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_MAX_ACTIONS
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        logger.warning(
            "%s=%r is not a whole number of at least 1; using %d",
            MAX_ACTIONS_ENV,
            value,
            DEFAULT_MAX_ACTIONS,
        )
        return DEFAULT_MAX_ACTIONS
    return number


@dataclass
class TurnResult:
    conversation: Conversation
    new_events: list[Event]

    def messages(self) -> list[dict[str, Any]]:
        return bot_messages(self.new_events, self.conversation.sender_id)


@dataclass
class Fired:
    """A reminder's turn that said something (it fired, or a custom ``action_session_start``
    spoke as its expired session was renewed): the channel to answer on (the conversation's
    latest) and the metadata of its latest user message (where on that channel: Slack's channel
    and thread)."""

    channel: str | None
    metadata: dict[str, Any]
    result: TurnResult


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
        max_actions: int | None = None,
        rng: random.Random | None = None,
        cache_size: int = DEFAULT_CONVERSATION_CACHE_SIZE,
        listeners: list[Listener] | None = None,
        nlg: NLGClient | None = None,
    ) -> None:
        self.domain = domain
        # Told every batch of events once it is stored (the reminder scheduler listens).
        self.listeners: list[Listener] = listeners if listeners is not None else []
        self.nlg = nlg  # an NLG server words the responses (endpoints.yml ``nlg:``)
        self.parse = parse
        self.ensemble = ensemble
        self.actions = actions
        self.cache = ConversationCache(cache_size)
        self.store = store
        self.locks = locks
        self.max_actions = max_actions if max_actions is not None else max_actions_from_env()
        self.rng = rng or random.Random()
        self.sessions = SessionWatch(domain)

    @property
    def store(self) -> ConversationStore:
        return self._store

    @store.setter
    def store(self, store: ConversationStore) -> None:
        """Another store: the cached conversations were another store's."""
        self._store = store
        self.cache.clear()

    async def handle_message(self, message: UserMessage) -> list[dict[str, Any]]:
        result = await self.handle(message)
        return result.messages()

    async def handle(self, message: UserMessage) -> TurnResult:
        # The parse starts at once, beside waiting for the lock and loading the conversation (it
        # needs neither); its result is taken under the lock, so messages are still logged in
        # the lock's FIFO order, the order they came in, however long each parse takes.
        parsing = asyncio.ensure_future(self.parse(message.text))

        async def turn(conversation: Conversation) -> None:
            parse_data = await parsing
            debug = turn_debug.enabled()
            if debug:
                turn_debug.user_message(message.sender_id, message.text, parse_data)
            await self._log_user(conversation, message, parse_data)
            await self.predict_and_run(conversation, message.input_channel)
            if debug:
                turn_debug.slots(message.sender_id, conversation.slots)

        try:
            return await self.update(
                message.sender_id, turn, channel=message.input_channel, metadata=message.metadata
            )
        finally:
            if not parsing.done():  # the turn failed before it needed the parse
                parsing.cancel()
            elif not parsing.cancelled():
                parsing.exception()  # retrieved: a failed parse is reported once, by the turn

    async def update(
        self,
        conversation_id: str,
        change: Callable[[Conversation], Awaitable[None]],
        *,
        channel: str | None = None,
        metadata: dict[str, Any] | None = None,
        start_session: bool = True,
        all_sessions: bool = False,
        notify: bool = True,
    ) -> TurnResult:
        """lock -> load -> session start (if needed) -> ``change`` -> save the new events.

        ``all_sessions``: the conversation holds every session (the HTTP API's view), else its
        last session only (the view a turn needs, and the one kept in the cache). ``notify``:
        the listeners (the reminder scheduler) are told of the new events."""
        async with self.locks.lock(conversation_id):
            conversation, next_seq = await self._load(conversation_id, all_sessions)
            start = len(conversation.events)
            if start_session:
                await self.start_session_if_needed(conversation, metadata, channel)
            await change(conversation)
            new_events = conversation.events[start:]
            if new_events:
                await self.store.append(conversation_id, new_events, start_seq=next_seq)
                for listener in self.listeners if notify else ():
                    listener(conversation_id, new_events)
            # Not cached: the all-sessions view, and a conversation that started a session in
            # this turn (a load returns the new session only; the next turn reads it once).
            if not all_sessions and not any(is_session_start(e) for e in new_events):
                self.cache.put(conversation_id, conversation, next_seq + len(new_events))
        return TurnResult(conversation, new_events)

    async def _load(self, conversation_id: str, all_sessions: bool) -> tuple[Conversation, int]:
        """The conversation (from the cache when the store is still where this process left
        it, or has only moved on by events appended since) and the seq its next event gets."""
        cached = self.cache.take(conversation_id)
        if cached is not None and not all_sessions:
            next_seq = await self.store.next_seq(conversation_id)
            if next_seq == cached.next_seq:
                self.cache.hits += 1
                return cached.conversation, cached.next_seq
            if next_seq > cached.next_seq and await self._catch_up(conversation_id, cached):
                self.cache.caught_up += 1
                return cached.conversation, cached.next_seq
            logger.debug("conversation %s changed in the store; loading it", conversation_id)
        if not all_sessions:
            self.cache.misses += 1
        stored = await self.store.load(conversation_id, all_sessions=all_sessions)
        return Conversation(conversation_id, self.domain, stored.events), stored.next_seq

    async def _catch_up(self, conversation_id: str, cached: CachedConversation) -> bool:
        """Apply to the cached conversation the events another process (or the HTTP API of
        another) appended since this one last wrote, read from the seq of the cached last event
        on: that event must be the store's too (else the log was replaced: an expired and new
        conversation under the same id). False, with the entry spent, where it cannot be done
        (no cached event, another log, a new session began): the caller loads it whole. So a
        turn on a conversation that moves between processes reads what is new, not its session."""
        conversation = cached.conversation
        if not conversation.events or cached.next_seq == 0:
            return False
        stored = await self.store.load_since(conversation_id, cached.next_seq - 1)
        events = stored.events
        if not events or ev.identity(events[0]) != ev.identity(conversation.events[-1]):
            return False
        if any(is_session_start(e) for e in events[1:]):
            return False  # the cache holds the last session only: read the new one
        try:
            conversation.extend(events[1:])
        except (KeyError, TypeError, ValueError, AttributeError):
            return False  # the conversation is spent (taken out of the cache): load it whole
        cached.next_seq = stored.next_seq
        return True

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
        conversation.extend(
            _now_stamped(await self._extracted_slots(conversation, message.input_channel))
        )

    async def _extracted_slots(
        self, conversation: Conversation, channel: str | None
    ) -> list[Event]:
        """Rasa 3's ``action_extract_slots`` (``chatbot.actions.extract_slots``), its actions
        run as the conversation's custom actions."""

        async def run(action: str, seen: Conversation) -> list[Event]:
            return await self.actions.get(action).run(self._context(seen, channel))

        return await extracted_slots(conversation, self.domain, run)

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
        """Act as if the user sent ``intent`` with ``entities`` (Rasa's external event, logged
        on the conversation's latest input channel: ``chatbot.external_events``), then predict
        and run actions until the bot listens; ``channel`` is the one the bot answers on."""

        async def turn(conversation: Conversation) -> None:
            await self._log_external(conversation, intent, entities, channel)
            await self.predict_and_run(conversation, channel)

        return await self.update(conversation_id, turn, channel=channel, **kwargs)

    async def _log_external(
        self,
        conversation: Conversation,
        intent: str,
        entities: list[dict[str, Any]],
        channel: str | None,
    ) -> None:
        event = external_user_event(intent, entities, latest_input_channel(conversation))
        conversation.append(event)
        conversation.extend(_now_stamped(await self._extracted_slots(conversation, channel)))

    async def fire_reminder(self, conversation_id: str, reminder: Event) -> Fired | None:
        """A due reminder, as Rasa's ``handle_reminder``: a session that has expired is renewed
        first (on the conversation's latest channel), which leaves the reminder behind; then,
        unless ``reminders.why_not_due`` says otherwise, the bot acts as if the user sent its
        intent (as ``trigger_intent``), answering on that channel. None when nothing was said
        (it did not fire, and no custom ``action_session_start`` spoke)."""
        where: list[tuple[str | None, dict[str, Any]]] = []

        async def turn(conversation: Conversation) -> None:
            latest = conversation.latest_user_event() or {}
            channel = latest_input_channel(conversation)
            metadata = latest.get("metadata")
            where.append((channel, metadata if isinstance(metadata, dict) else {}))
            await self.start_session_if_needed(conversation, None, channel)
            why = why_not_due(reminder, conversation.applied_events(), conversation.events)
            if why is not None:
                logger.info("conversation %s: reminder not fired: %s", conversation_id, why)
                return
            intent = str(reminder["intent"])
            if intent not in self.domain.intent_names:
                logger.error(
                    "conversation %s: reminder intent %r is not in the domain; not fired",
                    conversation_id,
                    intent,
                )
                return
            await self._log_external(conversation, intent, entities_of(reminder), channel)
            await self.predict_and_run(conversation, channel)

        result = await self.update(conversation_id, turn, start_session=False)
        fired = any(e.get("event") == "user" for e in result.new_events)
        return Fired(*where[0], result) if fired or result.messages() else None

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
        on the conversation before anything is stored. A conversation that has no events yet
        starts its session first (as Rasa's)."""

        async def append(conversation: Conversation) -> None:
            if not conversation.events:
                await self.start_session_if_needed(conversation, None, None)
            try:
                conversation.extend(events)
                conversation.current_state()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidEvent(
                    f"the events do not apply to the conversation ({exc!r})"
                ) from None

        return await self.update(conversation_id, append, start_session=False, **kwargs)

    def forget(self, conversation_id: str) -> None:
        """Drop what the policies keep of a conversation that is not stored (the LSTM's state)."""
        for policy in self.ensemble.policies:
            if isinstance(policy, LSTMPolicy):
                policy.forget(conversation_id)

    def scores(self, conversation: Conversation) -> tuple[Prediction, dict[str, float]]:
        """The next action and a score for each action of the domain (Rasa's ``/predict``): the
        probabilities of the policy that chose, when it has them (the LSTM), else its one choice
        (rules and memorized stories are sure of one action)."""
        prediction = self.ensemble.predict(conversation)
        scores = dict.fromkeys(self.domain.action_names, 0.0)
        chosen = next((p for p in self.ensemble.policies if p.name == prediction.policy), None)
        if isinstance(chosen, LSTMPolicy):
            probabilities = chosen.probabilities(conversation)
            if probabilities is not None:
                for label, p in zip(chosen.featurizer.labels, probabilities.tolist(), strict=True):
                    if label in scores:
                        scores[label] = float(p)
        scores[prediction.action] = prediction.confidence
        return prediction, scores

    async def start_session_if_needed(
        self, conversation: Conversation, metadata: dict[str, Any] | None, channel: str | None
    ) -> None:
        """Run ``action_session_start`` where a new session is due (``chatbot.sessions``),
        logged as Rasa's (no policy), after the starting message's metadata is set on the
        ``session_started_metadata`` slot."""
        if self.sessions.needs_start(conversation):
            conversation.extend(start_metadata_events(metadata))
            prediction = Prediction(d.ACTION_SESSION_START, 1.0, "", 0)
            await self.run_action(d.ACTION_SESSION_START, conversation, prediction, channel)

    async def predict_and_run(self, conversation: Conversation, channel: str | None) -> None:
        """Predict and run actions until the bot listens (at most ``max_actions``). A paused
        conversation (an action returned ConversationPaused: a human took over) runs nothing,
        but for ``/restart``, as Rasa's: the message is stored and the bot stays silent. The
        turn an action paused it in ends with the bot listening (Rasa's ends with the action),
        so that the conversation goes on as after any turn once it is resumed."""
        excluded: set[str] = set()
        for step in range(self.max_actions):
            if conversation.paused and conversation.latest_intent != d.INTENT_RESTART:
                if step:
                    conversation.append(ev.action(d.ACTION_LISTEN, "processor", 1.0))
                return
            prediction = self._followup(conversation) or self.ensemble.predict(
                conversation, excluded
            )
            if turn_debug.enabled():
                turn_debug.prediction(
                    conversation.sender_id,
                    prediction.action,
                    prediction.policy,
                    prediction.confidence,
                )
            if prediction.action == d.ACTION_LISTEN:
                if prediction.events:
                    conversation.extend(_now_stamped(list(prediction.events)))
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

    def _followup(self, conversation: Conversation) -> Prediction | None:
        """The action a FollowupAction asks for next; as Rasa's, one the domain lacks is
        ignored (and the next action predicted)."""
        name = conversation.followup_action
        if name is None or name in self.domain.action_names:
            return None if name is None else Prediction(name, 1.0, FOLLOWUP_POLICY, 0)
        logger.warning(
            "conversation %s: trying to run the unknown follow-up action '%s'; will ignore the "
            "action and predict the next action",
            conversation.sender_id,
            name,
        )
        conversation.followup_action = None
        return None

    async def run_action(
        self, name: str, conversation: Conversation, prediction: Prediction, channel: str | None
    ) -> str:
        """Run one action and log it: "ok", "rejected", "stop" (the bot must listen now) or
        "listened" (the action's own events end with a listen, as a session start's do)."""
        action = self.actions.get(name)
        running = conversation
        if prediction.events:  # the action runs with them; they are logged unless it rejects
            running = conversation.fork()
            running.extend(prediction.events)
        ctx = self._context(running, channel)
        try:
            events = await action.run(ctx)
        except ActionRejected as exc:
            logger.debug("%s", exc)
            conversation.append(ev.action_rejected(name, prediction.policy, prediction.confidence))
            return "rejected"
        except ActionError as exc:
            logger.error("conversation %s: %s", conversation.sender_id, exc)
            conversation.extend(self._failure_events(ctx))
            if _in_a_user_turn(conversation):
                # The message is reverted, as Rasa's default fallback reverts one: the
                # conversation is where it was before it (a form does not half-start, its
                # slots are not kept) and the user may send it again. Read against a turn
                # that did not happen, a later "yes" confirmed a booking never collected.
                conversation.append(ev.simple("rewind"))
            return "stop"
        for unknown in {e["name"] for e in events if ev.is_slot_outside(e, conversation.slots)}:
            logger.warning(
                "conversation %s: action '%s' set the slot '%s', which the domain does not "
                "have: not set",
                conversation.sender_id,
                name,
                unknown,
            )
        if turn_debug.enabled():
            turn_debug.action_events(conversation.sender_id, name, events)
        if any(e.get("event") == "action_execution_rejected" for e in events):
            # The action rejected itself by returning ActionExecutionRejected (rather than
            # raising): as Rasa's, it is not logged as run; the next action is predicted anew.
            conversation.extend(_now_stamped(events))
            return "rejected"
        if prediction.events:  # a custom policy's, logged before its action as in Rasa
            conversation.extend(_now_stamped(list(prediction.events)))
        conversation.append(
            ev.action(
                name,
                prediction.policy or None,
                prediction.confidence,
                hide_rule_turn=prediction.hide_rule_turn,
            )
        )
        events = _now_stamped(events)
        conversation.extend(events)
        rewinds = [i for i, e in enumerate(events) if e.get("event") == "rewind"]
        if (
            rewinds
            and not any(e.get("event") == "user" for e in events[rewinds[-1] :])
            and not conversation.followup_action
        ):
            # A user message rewound: the bot listens (a clarified one goes on; so does a
            # FollowupAction, as in Rasa: financial-demo's "show recipients" in a form rewinds
            # and resumes the form).
            return "stop"
        if events and ev.is_action(events[-1], d.ACTION_LISTEN):
            return "listened"
        return "ok"

    def _context(self, conversation: Conversation, channel: str | None) -> ActionContext:
        async def run_sub_action(name: str, scratch: Conversation) -> list[Event]:
            return await self.actions.get(name).run(self._context(scratch, channel))

        output = output_channel(channel)
        return ActionContext(conversation, self.domain, output, self.rng, run_sub_action, self.nlg)

    def _failure_events(self, ctx: ActionContext) -> list[Event]:
        if ACTION_FAILED_RESPONSE in self.domain.responses:
            events = ctx.utter(ACTION_FAILED_RESPONSE)
            if events:
                return events
        return [bot_event({"text": ACTION_FAILED_TEXT}, ACTION_FAILED_RESPONSE)]


def _in_a_user_turn(conversation: Conversation) -> bool:
    """Whether the bot is answering a user message (an external event's included), not acting
    on its own (an action the HTTP API executes after the bot listened)."""
    for event in reversed(conversation.events):
        if event.get("event") == "user":
            return True
        if ev.is_action(event, d.ACTION_LISTEN):
            return False
    return False


def _now_stamped(events: list[Event]) -> list[Event]:
    """Copies of an action's events timed now, in order, as Rasa logs them
    (``update_with_events(override_timestamp=True)``): the log stays in time order whatever
    times an action gave, and its bot messages come after its ``action`` event."""
    return [{**e, "timestamp": ev.now()} for e in events]
