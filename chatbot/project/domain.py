"""The domain of a bot: intents, entities, slots, responses, actions, forms, session settings.

These are plain frozen dataclasses. Reading them from YAML (with file:line in errors) is
``chatbot.project.domain_reader``; ``Domain.as_dict`` writes Rasa's domain format back, which is
also how a domain is stored in a model file and served at ``GET /domain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Actions every domain has, in Rasa's order. Their indices come first in the action list.
ACTION_LISTEN = "action_listen"
ACTION_RESTART = "action_restart"
ACTION_SESSION_START = "action_session_start"
ACTION_DEFAULT_FALLBACK = "action_default_fallback"
ACTION_DEACTIVATE_LOOP = "action_deactivate_loop"
ACTION_REVERT_FALLBACK_EVENTS = "action_revert_fallback_events"
ACTION_DEFAULT_ASK_AFFIRMATION = "action_default_ask_affirmation"
ACTION_DEFAULT_ASK_REPHRASE = "action_default_ask_rephrase"
ACTION_TWO_STAGE_FALLBACK = "action_two_stage_fallback"
ACTION_UNLIKELY_INTENT = "action_unlikely_intent"
ACTION_BACK = "action_back"
ACTION_SEND_TEXT = "action_send_text"
ACTION_EXTRACT_SLOTS = "action_extract_slots"
# A custom action (rasa-sdk's ValidationAction) that action_extract_slots runs where the domain has
# it: it extracts custom slots and validates every extracted value.
VALIDATE_SLOT_MAPPINGS = "action_validate_slot_mappings"

DEFAULT_ACTIONS: tuple[str, ...] = (
    ACTION_LISTEN,
    ACTION_RESTART,
    ACTION_SESSION_START,
    ACTION_DEFAULT_FALLBACK,
    ACTION_DEACTIVATE_LOOP,
    ACTION_REVERT_FALLBACK_EVENTS,
    ACTION_DEFAULT_ASK_AFFIRMATION,
    ACTION_DEFAULT_ASK_REPHRASE,
    ACTION_TWO_STAGE_FALLBACK,
    ACTION_UNLIKELY_INTENT,
    ACTION_BACK,
    ACTION_SEND_TEXT,
    ACTION_EXTRACT_SLOTS,
)

# Intents every domain has (Rasa adds them to every domain).
INTENT_RESTART = "restart"
INTENT_BACK = "back"
INTENT_OUT_OF_SCOPE = "out_of_scope"
INTENT_SESSION_START = "session_start"
INTENT_NLU_FALLBACK = "nlu_fallback"
DEFAULT_INTENTS: tuple[str, ...] = (
    INTENT_RESTART,
    INTENT_BACK,
    INTENT_OUT_OF_SCOPE,
    INTENT_SESSION_START,
    INTENT_NLU_FALLBACK,
)

REQUESTED_SLOT = "requested_slot"
# Slots every conversation has besides the domain's, as Rasa adds them to every domain: not
# featurized, not in the domain's YAML or JSON (Rasa's ``as_dict`` leaves them out too).
# ``session_started_metadata`` (Rasa's ``AnySlot``) holds the metadata of the message that started
# the session, set before ``action_session_start`` runs.
SESSION_START_METADATA_SLOT = "session_started_metadata"
DEFAULT_SLOTS: tuple[str, ...] = (REQUESTED_SLOT, SESSION_START_METADATA_SLOT)
# Rasa's knowledge-base action (rasa-sdk's ``ActionQueryKnowledgeBase``) keeps what it listed and
# the object talked about in these slots, which Rasa adds to a domain that lists the action
# (``Domain._add_knowledge_base_slots``: text slots that do not influence the conversation).
KNOWLEDGE_BASE_ACTION = "action_query_knowledge_base"
KNOWLEDGE_BASE_SLOTS: tuple[str, ...] = (
    "knowledge_base_listed_objects",
    "knowledge_base_last_object",
    "knowledge_base_last_object_type",
)
SLOT_TYPES: tuple[str, ...] = ("text", "bool", "categorical", "float", "list", "any")
MAPPING_TYPES: tuple[str, ...] = (
    "from_entity",
    "from_text",
    "from_intent",
    "from_trigger_intent",
    "custom",
)


@dataclass(frozen=True)
class Origin:
    """Where a domain or data item was written: file and 1-based line, when known."""

    file: str | None = None
    line: int | None = None

    @property
    def prefix(self) -> str:
        """``file:line: `` to put before a message about the item; empty when unknown."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "


NO_ORIGIN = Origin()


@dataclass(frozen=True)
class Intent:
    name: str
    # None: every entity is used (Rasa's default); otherwise only these entities are featurized.
    used_entities: tuple[str, ...] | None = None
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Entity:
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    influence_conversation: bool = True
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class MappingCondition:
    """A slot mapping applies only while this form is active (None: no active form, in Rasa's
    sense ``active_loop: null``), and, if given, while it requests this slot."""

    active_loop: str | None
    requested_slot: str | None = None


@dataclass(frozen=True)
class SlotMapping:
    type: str  # one of MAPPING_TYPES
    entity: str | None = None
    role: str | None = None
    group: str | None = None
    intent: tuple[str, ...] = ()  # empty: any intent
    not_intent: tuple[str, ...] = ()
    value: Any = None  # from_intent / from_trigger_intent
    action: str | None = None  # custom
    conditions: tuple[MappingCondition, ...] = ()
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Slot:
    name: str
    type: str  # one of SLOT_TYPES
    values: tuple[str, ...] = ()  # categorical
    min_value: float = 0.0  # float
    max_value: float = 1.0  # float
    initial_value: Any = None
    influence_conversation: bool = True
    mappings: tuple[SlotMapping, ...] = ()
    origin: Origin = NO_ORIGIN
    # A project's own slot class (``type: addons.slots.MySlot``): its path, and the domain's other
    # keys for the slot (the class's keyword arguments). ``type`` is then the built-in type the
    # class derives from (text where none), and ``kind`` the class at work
    # (``chatbot.rasa_compat.slots.SlotKind``) once ``chatbot.project.custom_slots`` imported it.
    custom: str | None = None
    settings: dict[str, Any] = field(default_factory=dict, hash=False)
    kind: Any = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class ResponseCondition:
    """``condition: [{type: slot, name: X, value: V}]`` on a response variation."""

    name: str
    value: Any
    type: str = "slot"


@dataclass(frozen=True)
class ResponseVariation:
    # The variation as written (text, buttons, image, custom, attachment, quick_replies, elements,
    # metadata, ...), without ``channel`` and ``condition``, which are split out below.
    data: dict[str, Any]
    channel: str | None = None
    conditions: tuple[ResponseCondition, ...] = ()
    origin: Origin = NO_ORIGIN

    @property
    def text(self) -> str | None:
        text = self.data.get("text")
        return text if isinstance(text, str) else None


@dataclass(frozen=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ignored_intents: tuple[str, ...] = ()
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class SessionConfig:
    session_expiration_time: float = 60.0  # minutes; 0 means sessions never expire
    carry_over_slots: bool = True

    @property
    def expires(self) -> bool:
        return self.session_expiration_time > 0


@dataclass(frozen=True)
class Domain:
    intents: dict[str, Intent] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, tuple[ResponseVariation, ...]] = field(default_factory=dict)
    # Actions declared under ``actions:``. A default action named here is replaced by a custom
    # action of that name, as in Rasa.
    actions: tuple[str, ...] = ()
    forms: dict[str, Form] = field(default_factory=dict)
    session_config: SessionConfig = field(default_factory=SessionConfig)
    store_entities_as_slots: bool = True
    # ``actions: [{name: {send_domain: true}}]``
    action_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Files the domain was read from, in order.
    files: tuple[str, ...] = ()
    # ``e2e_actions:``: bot texts of end-to-end stories (``- bot: "..."``), in Rasa's order.
    action_texts: tuple[str, ...] = ()

    @property
    def intent_names(self) -> tuple[str, ...]:
        """Declared intents followed by the default intents not declared."""
        declared = tuple(self.intents)
        return declared + tuple(i for i in DEFAULT_INTENTS if i not in self.intents)

    @property
    def action_names(self) -> tuple[str, ...]:
        """Every action the bot can run, defaults first, in a stable order (the policy's labels).

        Defaults, then declared actions, then responses not declared as actions (Rasa accepts
        ``utter_`` responses without listing them), then forms.
        """
        names: list[str] = list(DEFAULT_ACTIONS)
        seen = set(names)
        for name in (*self.actions, *self.responses, *self.forms):
            # ``utter_faq/ask_name`` responses are served by the retrieval action ``utter_faq``.
            name = name.split("/", 1)[0]
            if name not in seen:
                names.append(name)
                seen.add(name)
        return tuple(names)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(self.slots)

    def is_form(self, name: str | None) -> bool:
        return name is not None and name in self.forms
