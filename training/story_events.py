"""Flat story steps as conversation events, with the actions a policy must learn to predict.

Stories start with an implicit ``action_listen`` (the state a new session is in), get an
``action_listen`` before each user turn that follows a bot action, and end with one. Rules start
mid-conversation: their first state says nothing about earlier actions unless
``conversation_start`` is set, a leading action step is context rather than a prediction, and for
every state we record which features the rule mentions (only those are matched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.conversation.state import (
    ACTIVE_LOOP,
    ENTITIES,
    INTENT,
    PREV_ACTION,
    REQUESTED,
    SLOT_PREFIX,
    TEXT,
)
from chatbot.project.domain import ACTION_LISTEN, DEFAULT_SLOTS, REQUESTED_SLOT, Domain
from chatbot.project.stories import ActionStep, ActiveLoopStep, SlotStep, Step, Story, UserStep
from chatbot.project.training_data import EntityAnnotation


@dataclass
class TrainingConversation:
    name: str
    source: Story
    events: list[Event] = field(default_factory=list)
    # For each event: whether it is an action a policy must predict.
    targets: list[bool] = field(default_factory=list)
    # For rules, for each action event: the state features the rule mentions before it.
    mentioned: list[frozenset[str] | None] = field(default_factory=list)
    # Made by the training (glued stories, a form's paths, rules put into stories), not written
    # by the user: contradictions between such copies are not the user's to fix.
    generated: bool = False

    def add(
        self, event: Event, target: bool = False, mentioned: frozenset[str] | None = None
    ) -> None:
        self.events.append(event)
        self.targets.append(target)
        self.mentioned.append(mentioned)

    @property
    def last_action(self) -> str | None:
        for event in reversed(self.events):
            if event.get("event") == "action":
                return str(event["name"])
            if event.get("event") == "user":
                return None
        return None


def entity_dicts(entities: Sequence[EntityAnnotation]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for a in entities:
        item: dict[str, object] = {
            "entity": a.entity,
            "start": a.start,
            "end": a.end,
            "value": a.value,
        }
        if a.role:
            item["role"] = a.role
        if a.group:
            item["group"] = a.group
        out.append(item)
    return out


def user_event(step: UserStep) -> Event:
    parse: dict[str, object] = {
        "intent": {"name": step.intent, "confidence": 1.0},
        "entities": entity_dicts(step.entities),
    }
    if step.intent is not None and "/" in step.intent:
        # A retrieval intent's full name (``faq/ask_name``, as test stories write it): the
        # intent is ``faq`` and the response its selection, as the NLU gives them at run time
        # (Rasa's story reader splits them alike).
        base = step.intent.split("/", 1)[0]
        parse["intent"] = {"name": base, "confidence": 1.0}
        key = {"intent_response_key": step.intent, "confidence": 1.0}
        parse["response_selector"] = {base: {"response": key, "ranking": [key]}}
    return ev.user(step.text, parse)  # type: ignore[arg-type]


def action_name(step: ActionStep) -> str:
    # End-to-end bot turns (``bot: "text"``) are actions named by their text.
    return step.name if step.name is not None else str(step.text)


def build(
    name: str,
    source: Story,
    steps: Sequence[Step],
    domain: Domain,
    *,
    rule: bool = False,
) -> TrainingConversation:
    conv = TrainingConversation(name, source)
    mentioned: set[str] = set()

    def mention_slot(slot_name: str) -> None:
        if slot_name == REQUESTED_SLOT:
            mentioned.add(REQUESTED)
        elif slot_name in domain.slots:
            mentioned.add(SLOT_PREFIX + slot_name)

    def set_slot(slot_name: str, value: Any) -> None:
        # A slot the domain lacks is not set (the validator warned about it, as Rasa's story
        # reader does): no state has it, at training or at run time.
        if slot_name in domain.slots or slot_name in DEFAULT_SLOTS:
            conv.add(ev.slot(slot_name, value))
            mention_slot(slot_name)

    def add_action(action: str, target: bool, context: frozenset[str] | None = None) -> None:
        conv.add(ev.action(action), target, frozenset(mentioned) if context is None else context)
        mentioned.add(PREV_ACTION)

    if rule:
        for cond in source.conditions:
            if isinstance(cond, SlotStep):
                for slot_name, value in cond.slots:
                    set_slot(slot_name, value)
            elif isinstance(cond, ActiveLoopStep):
                conv.add(ev.active_loop(cond.name))
                mentioned.add(ACTIVE_LOOP)
    if not rule or source.conversation_start:
        mentioned.add(PREV_ACTION)
        add_action(ACTION_LISTEN, target=False)

    seen_user = False
    first_action = True
    for step in steps:
        if isinstance(step, UserStep):
            if conv.last_action not in (None, ACTION_LISTEN):
                add_action(ACTION_LISTEN, target=True)
            elif rule and conv.last_action is None and not seen_user:
                # A user turn always follows a listen: a rule's first user step only matches
                # right after the bot listened (so it cannot fire again after its own actions).
                # Nothing is asked of the state before that listen: conditions hold after it (the
                # user's message may be what fills a slot they name).
                add_action(ACTION_LISTEN, target=False, context=frozenset())
            conv.add(user_event(step))
            seen_user = True
            mentioned.add(INTENT)
            mentioned.discard(TEXT)
            if step.intent is None and step.text is not None:
                mentioned.add(TEXT)
            if step.entities:
                mentioned.add(ENTITIES)
            else:
                mentioned.discard(ENTITIES)
        elif isinstance(step, ActionStep):
            # A rule's leading action is the context the rule starts from, not a prediction, and
            # nothing is asked of the state before it: when the action is a form running again,
            # that state is folded out of the history (see Conversation.applied_events), and the
            # state after it says what the rule needs (the action ran, the form is (in)active).
            leading = rule and first_action and not seen_user
            add_action(action_name(step), not leading, frozenset() if leading else None)
            first_action = False
        elif isinstance(step, SlotStep):
            for slot_name, value in step.slots:
                set_slot(slot_name, value)
        elif isinstance(step, ActiveLoopStep):
            conv.add(ev.active_loop(step.name))
            mentioned.add(ACTIVE_LOOP)
    ends_with_action = conv.last_action not in (None, ACTION_LISTEN)
    if ends_with_action and (not rule or source.wait_for_user_input):
        add_action(ACTION_LISTEN, target=True)
    return conv
