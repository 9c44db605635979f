"""What a Rasa 3 custom policy imports from Rasa: ``Policy`` and ``PolicyPrediction``
(``rasa.core.policies.policy``), ``DialogueStateTracker`` (``rasa.shared.core.trackers``),
``Domain`` (``rasa.shared.core.domain``), the events (``rasa.shared.core.events``) and the names
of ``rasa.shared.core.constants``. The tracker and the domain are views of ours
(``chatbot.conversation.conversation.Conversation``, ``chatbot.project.domain.Domain``) with the
attributes and methods Rasa's have for policies; ``chatbot.dialogue.custom_policy`` runs them."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from chatbot.rasa_compat.engine import ExecutionContext, GraphComponent, ModelStorage, Resource

# rasa.shared.core.constants
ACTION_LISTEN_NAME = "action_listen"
ACTION_RESTART_NAME = "action_restart"
ACTION_SESSION_START_NAME = "action_session_start"
ACTION_DEFAULT_FALLBACK_NAME = "action_default_fallback"
ACTION_DEACTIVATE_LOOP_NAME = "action_deactivate_loop"
ACTION_REVERT_FALLBACK_EVENTS_NAME = "action_revert_fallback_events"
ACTION_DEFAULT_ASK_AFFIRMATION_NAME = "action_default_ask_affirmation"
ACTION_DEFAULT_ASK_REPHRASE_NAME = "action_default_ask_rephrase"
ACTION_BACK_NAME = "action_back"
ACTION_TWO_STAGE_FALLBACK_NAME = "action_two_stage_fallback"
ACTION_UNLIKELY_INTENT_NAME = "action_unlikely_intent"
ACTION_EXTRACT_SLOTS = "action_extract_slots"
REQUESTED_SLOT = "requested_slot"
USER_INTENT_RESTART = "restart"
USER_INTENT_BACK = "back"
USER_INTENT_OUT_OF_SCOPE = "out_of_scope"
USER_INTENT_SESSION_START = "session_start"
DEFAULT_NLU_FALLBACK_INTENT_NAME = "nlu_fallback"
POLICY_PRIORITY = "priority"
DEFAULT_POLICY_PRIORITY = 1
RULE_SNIPPET_ACTION_NAME = "..."
LOOP_NAME = "name"
ACTIVE_LOOP = "active_loop"

CONSTANTS = {name: value for name, value in dict(globals()).items() if name.isupper()}


# ------------------------------------------------------------------------------------- events


class Event:
    """An event as Rasa's classes show it; ``as_dict()`` is the event's JSON."""

    type_name = "event"
    _fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, timestamp: float | None = None, **kwargs: Any) -> None:
        for name, value in zip(self._fields, args, strict=False):
            kwargs.setdefault(name, value)
        for name in self._fields:
            setattr(self, name, kwargs.pop(name, None))
        self.timestamp = timestamp
        self.metadata = kwargs.pop("metadata", None) or {}
        self._data: dict[str, Any] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event of our (Rasa's) JSON."""
        kind = EVENT_CLASSES.get(str(data.get("event")), Event)
        made = kind.__new__(kind)
        kind._read(made, data)
        made._data = dict(data)
        return made

    def _read(self, data: Mapping[str, Any]) -> None:
        for name in self._fields:
            setattr(self, name, data.get(name))
        self.timestamp = data.get("timestamp")
        self.metadata = data.get("metadata") or {}

    def as_dict(self) -> dict[str, Any]:
        if self._data:
            return dict(self._data)
        out: dict[str, Any] = {"event": self.type_name, "timestamp": self.timestamp}
        out.update({name: getattr(self, name) for name in self._fields})
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        mine, theirs = self.as_dict(), other.as_dict()
        mine.pop("timestamp", None)
        theirs.pop("timestamp", None)
        return mine == theirs

    def __hash__(self) -> int:
        return hash(self.type_name)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"


class UserUttered(Event):
    type_name = "user"
    _fields = ("text", "parse_data", "input_channel", "message_id")

    def _read(self, data: Mapping[str, Any]) -> None:
        super()._read(data)
        self.parse_data = dict(data.get("parse_data") or {})

    @property
    def intent(self) -> dict[str, Any]:
        return dict((self.parse_data or {}).get("intent") or {})

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list((self.parse_data or {}).get("entities") or [])

    @property
    def intent_name(self) -> str | None:
        return self.intent.get("name")


class BotUttered(Event):
    type_name = "bot"
    _fields = ("text", "data")


class ActionExecuted(Event):
    type_name = "action"
    _fields = ("name", "policy", "confidence", "action_text", "hide_rule_turn")

    def __init__(self, action_name: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(action_name, *args, **kwargs)

    @property
    def action_name(self) -> str | None:
        return self.name  # type: ignore[attr-defined]


class SlotSet(Event):
    type_name = "slot"
    _fields = ("name", "value")

    def __init__(self, key: str | None = None, value: Any = None, **kwargs: Any) -> None:
        super().__init__(key, value, **kwargs)

    @property
    def key(self) -> str | None:
        return self.name  # type: ignore[attr-defined]


class ActiveLoop(Event):
    type_name = "active_loop"
    _fields = ("name",)


def _simple(class_name: str, type_name: str, fields: tuple[str, ...] = ()) -> type[Event]:
    return type(class_name, (Event,), {"type_name": type_name, "_fields": fields})


Restarted = _simple("Restarted", "restart")
SessionStarted = _simple("SessionStarted", "session_started")
AllSlotsReset = _simple("AllSlotsReset", "reset_slots")
UserUtteranceReverted = _simple("UserUtteranceReverted", "rewind")
ActionReverted = _simple("ActionReverted", "undo")
ConversationPaused = _simple("ConversationPaused", "pause")
ConversationResumed = _simple("ConversationResumed", "resume")
FollowupAction = _simple("FollowupAction", "followup", ("name",))
ActionExecutionRejected = _simple(
    "ActionExecutionRejected", "action_execution_rejected", ("name", "policy", "confidence")
)
LoopInterrupted = _simple("LoopInterrupted", "loop_interrupted", ("is_interrupted",))
EntitiesAdded = _simple("EntitiesAdded", "entities", ("entities",))
ReminderScheduled = _simple(
    "ReminderScheduled", "reminder", ("intent", "entities", "date_time", "name")
)
ReminderCancelled = _simple("ReminderCancelled", "cancel_reminder", ("name", "intent", "entities"))
AgentUttered = _simple("AgentUttered", "agent", ("text", "data"))

EVENT_CLASSES: dict[str, type[Event]] = {
    kind.type_name: kind
    for kind in (
        UserUttered,
        BotUttered,
        ActionExecuted,
        SlotSet,
        ActiveLoop,
        Restarted,
        SessionStarted,
        AllSlotsReset,
        UserUtteranceReverted,
        ActionReverted,
        ConversationPaused,
        ConversationResumed,
        FollowupAction,
        ActionExecutionRejected,
        LoopInterrupted,
        EntitiesAdded,
        ReminderScheduled,
        ReminderCancelled,
        AgentUttered,
    )
}
EVENT_NAMES = (*(kind.__name__ for kind in EVENT_CLASSES.values()), "Event")


# ------------------------------------------------------------------------ domain and tracker


def slot_view(slot: Any, value: Any = None) -> Any:
    """One of our domain's slots as Rasa's slot object holding ``value``: its own class's
    instance where the domain names a project's slot class, the built-in type's otherwise."""
    from chatbot.rasa_compat.slots import slot_for

    kind = getattr(slot, "kind", None)
    if kind is not None:
        return kind.holding(value)
    settings: dict[str, Any] = {"influence_conversation": slot.influence_conversation}
    if slot.type == "categorical":
        settings["values"] = list(slot.values)
    elif slot.type == "float":
        settings.update(min_value=slot.min_value, max_value=slot.max_value)
    return slot_for(slot.type, slot.name, value, **settings)


class Domain:
    """Rasa's domain as a policy reads it, over ours."""

    def __init__(self, ours: Any) -> None:
        self.ours = ours
        self.action_names_or_texts: list[str] = list(ours.action_names)
        self._index = {name: i for i, name in enumerate(self.action_names_or_texts)}
        self.intents: list[str] = list(ours.intent_names)
        self.entities: list[str] = list(ours.entities)
        self.slots = [slot_view(slot) for slot in ours.slots.values()]
        self.responses: dict[str, list[dict[str, Any]]] = {
            name: [dict(v.data) for v in variations] for name, variations in ours.responses.items()
        }
        self.forms: dict[str, Any] = {name: {} for name in ours.forms}
        self.user_actions: list[str] = list(ours.actions)

    @property
    def num_actions(self) -> int:
        return len(self.action_names_or_texts)

    @property
    def action_names(self) -> list[str]:
        return self.action_names_or_texts

    @property
    def form_names(self) -> list[str]:
        return list(self.forms)

    def index_for_action(self, action_name: str) -> int:
        try:
            return self._index[action_name]
        except KeyError:
            raise ValueError(f"'{action_name}' is not an action of the domain") from None


class DialogueStateTracker:
    """Rasa's tracker as a policy reads it, over one of our conversations."""

    def __init__(self, conversation: Any) -> None:
        self._conversation = conversation
        self.sender_id: str = conversation.sender_id
        self.slots: dict[str, Any] = {
            name: slot_view(slot, conversation.slots.get(name))
            for name, slot in conversation.domain.slots.items()
        }
        message = dict(conversation.latest_message or {})
        latest = Event.from_dict(
            {"event": "user", "text": message.get("text"), "parse_data": message}
        )
        assert isinstance(latest, UserUttered)
        self.latest_message = latest
        self.latest_action_name: str | None = conversation.latest_action_name
        self.followup_action: str | None = conversation.followup_action
        self.active_loop: dict[str, Any] = (
            {LOOP_NAME: conversation.active_loop_name} if conversation.active_loop_name else {}
        )
        self.is_rule_tracker = False

    @functools.cached_property
    def events(self) -> list[Event]:
        """Every event of the conversation (made when a policy first asks: a long conversation's
        events cost a turn of a policy that never reads them nothing)."""
        return [Event.from_dict(e) for e in self._conversation.events]

    @property
    def active_loop_name(self) -> str | None:
        return self.active_loop.get(LOOP_NAME)

    @property
    def latest_action(self) -> dict[str, Any] | None:
        if self.latest_action_name is None:
            return None
        return {"action_name": self.latest_action_name}

    @property
    def latest_bot_utterance(self) -> BotUttered | None:
        return next((e for e in reversed(self.events) if isinstance(e, BotUttered)), None)

    def get_intent_of_latest_message(self, skip_fallback_intent: bool = True) -> str | None:
        """The latest message's intent; where it is the NLU fallback, the runner-up of its
        ranking (``skip_fallback_intent``)."""
        name = self.latest_message.intent_name
        ranking = (self.latest_message.parse_data or {}).get("intent_ranking") or []
        if skip_fallback_intent and name == DEFAULT_NLU_FALLBACK_INTENT_NAME and len(ranking) > 1:
            return ranking[1].get("name")
        return name

    def get_slot(self, key: str) -> Any:
        slot = self.slots.get(key)
        return slot.value if slot is not None else None

    def current_slot_values(self) -> dict[str, Any]:
        return {name: slot.value for name, slot in self.slots.items()}

    def get_latest_entity_values(
        self, entity_type: str, entity_role: str | None = None, entity_group: str | None = None
    ) -> Iterator[Any]:
        for entity in self.latest_message.entities:
            if (
                entity.get("entity") == entity_type
                and entity.get("role") == entity_role
                and entity.get("group") == entity_group
            ):
                yield entity.get("value")

    def applied_events(self) -> list[Event]:
        return [Event.from_dict(e) for e in self._conversation.applied_events()]

    def events_after_latest_restart(self) -> list[Event]:
        return [Event.from_dict(e) for e in self._conversation.events_after_latest_restart()]

    def is_paused(self) -> bool:
        return bool(self._conversation.paused)

    def get_last_event_for(
        self,
        event_type: type[Event] | tuple[type[Event], ...],
        action_names_to_exclude: Sequence[str] | None = None,
        skip: int = 0,
        event_verbosity: Any = None,
    ) -> Event | None:
        excluded = set(action_names_to_exclude or ())
        for event in reversed(self.applied_events()):
            if not isinstance(event, event_type):
                continue
            if isinstance(event, ActionExecuted) and event.action_name in excluded:
                continue
            if skip == 0:
                return event
            skip -= 1
        return None

    def past_states(
        self,
        domain: Any = None,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: Any = None,
    ) -> list[dict[str, dict[str, Any]]]:
        """The state before each action so far, then the current one, as Rasa's states: its
        ``user``, ``prev_action``, ``active_loop`` and ``slots`` sub-states (each slot that is
        set as its ``as_feature()`` numbers), the empty ones left out. Rule-only turns are not
        told apart (``ignore_rule_only_turns``, ``rule_only_data`` change nothing)."""
        ours = self._conversation.domain
        return [rasa_state(state, ours) for state in self._conversation.past_states()]

    def as_dialogue(self) -> Any:
        raise NotImplementedError("tracker.as_dialogue() is not provided by chatbot")

    def current_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(self._conversation.as_tracker())


def rasa_state(state: Any, domain: Any) -> dict[str, dict[str, Any]]:
    """One of our dialogue states (``chatbot.conversation.state``) as Rasa's."""
    from chatbot.conversation import state as ours

    features = dict(state)
    made: dict[str, dict[str, Any]] = {}
    user: dict[str, Any] = {}
    if features.get(ours.INTENT) is not None:
        user["intent"] = features[ours.INTENT]
    elif features.get(ours.TEXT) is not None:
        user["text"] = features[ours.TEXT]
    if user and features.get(ours.ENTITIES):
        user["entities"] = tuple(sorted(features[ours.ENTITIES]))
    if user:
        made["user"] = user
    previous = features.get(ours.PREV_ACTION)
    if previous is not None:
        texts = set(domain.action_texts) - set(domain.action_names)
        made["prev_action"] = (
            {"action_text": previous} if previous in texts else {"action_name": previous}
        )
    if features.get(ours.ACTIVE_LOOP):
        made["active_loop"] = {"name": features[ours.ACTIVE_LOOP]}
    slots = {}
    for key, value in state:
        if not key.startswith(ours.SLOT_PREFIX) or value is None:
            continue
        slot = domain.slots.get(key[len(ours.SLOT_PREFIX) :])
        if slot is not None:
            numbers = _slot_numbers(slot, value)
            if any(numbers):
                slots[slot.name] = numbers
    if slots:
        made["slots"] = slots
    return made


def _slot_numbers(slot: Any, value: Any) -> tuple[float, ...]:
    """A slot's feature in one of our states as Rasa's slot class gives it (``as_feature``)."""
    if isinstance(value, tuple):  # a project's slot class: its numbers already
        return value
    if slot.type == "bool":
        return (1.0, 1.0 if value is True else 0.0)
    if slot.type == "float":
        return (1.0, float(value))
    if slot.type == "categorical":  # Rasa adds __other__ to every categorical slot's values
        values = list(dict.fromkeys([*(str(v).lower() for v in slot.values), "__other__"]))
        return tuple(1.0 if v == value else 0.0 for v in values)
    return (1.0,)  # text, list: set


class TrackerWithCachedStates(DialogueStateTracker):
    """A training story or rule as a tracker (``is_rule_tracker`` for rules)."""


# ------------------------------------------------------------------------------------ policy


class SupportedData(enum.Enum):
    """Which training data a policy learns from: stories, rules, or both."""

    ML_DATA = 1
    RULE_DATA = 2
    ML_AND_RULE_DATA = 3


class TrackerFeaturizer:
    """Rasa's featurizers are not provided: a policy that makes one fails saying so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Rasa's tracker featurizers are not provided by chatbot")


MaxHistoryTrackerFeaturizer = FullDialogueTrackerFeaturizer = TrackerFeaturizer


class PolicyPrediction:
    """What a policy predicts: a probability per action of the domain."""

    def __init__(
        self,
        probabilities: list[float],
        policy_name: str | None,
        policy_priority: int = 1,
        events: list[Event] | None = None,
        optional_events: list[Event] | None = None,
        is_end_to_end_prediction: bool = False,
        is_no_user_prediction: bool = False,
        diagnostic_data: dict[str, Any] | None = None,
        hide_rule_turn: bool = False,
        action_metadata: dict[str, Any] | None = None,
    ) -> None:
        self.probabilities = list(probabilities)
        self.policy_name = policy_name
        self.policy_priority = policy_priority
        self.events = events or []
        self.optional_events = optional_events or []
        self.is_end_to_end_prediction = is_end_to_end_prediction
        self.is_no_user_prediction = is_no_user_prediction
        self.diagnostic_data = diagnostic_data or {}
        self.hide_rule_turn = hide_rule_turn
        self.action_metadata = action_metadata

    @staticmethod
    def for_action_name(
        domain: Domain, action_name: str, policy_name: str | None = None, confidence: float = 1.0
    ) -> PolicyPrediction:
        probabilities = [0.0] * domain.num_actions
        probabilities[domain.index_for_action(action_name)] = confidence
        return PolicyPrediction(probabilities, policy_name)

    @property
    def max_confidence_index(self) -> int:
        if not self.probabilities:
            return -1
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)

    @property
    def max_confidence(self) -> float:
        return max(self.probabilities, default=0.0)


class Policy(GraphComponent):
    """Rasa's base class of policies: keeps its config, priority, storage and resource."""

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any = None,
    ) -> None:
        self.config = config
        self.priority = int(config.get(POLICY_PRIORITY, DEFAULT_POLICY_PRIORITY))
        self.finetune_mode = execution_context.is_finetuning
        self._model_storage = model_storage
        self._resource = resource
        self._execution_context = execution_context
        self.featurizer = featurizer

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {POLICY_PRIORITY: DEFAULT_POLICY_PRIORITY}

    @staticmethod
    def supported_data() -> SupportedData:
        return SupportedData.ML_DATA

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> Policy:
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> Policy:
        return cls(config, model_storage, resource, execution_context)

    def train(
        self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        raise NotImplementedError(f"{type(self).__name__} does not implement train()")

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Any = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement predict_action_probabilities()"
        )

    def _prediction(
        self,
        probabilities: list[float],
        events: list[Event] | None = None,
        optional_events: list[Event] | None = None,
        is_end_to_end_prediction: bool = False,
        is_no_user_prediction: bool = False,
        diagnostic_data: dict[str, Any] | None = None,
        action_metadata: dict[str, Any] | None = None,
    ) -> PolicyPrediction:
        return PolicyPrediction(
            probabilities,
            type(self).__name__,
            self.priority,
            events,
            optional_events,
            is_end_to_end_prediction,
            is_no_user_prediction,
            diagnostic_data,
            action_metadata=action_metadata,
        )

    def _default_predictions(self, domain: Domain) -> list[float]:
        return [0.0] * domain.num_actions

    def _metadata(self) -> dict[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}@{id(self)}"
