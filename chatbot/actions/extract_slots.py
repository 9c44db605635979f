"""Slot filling from slot mappings after each user message (Rasa 3's ``action_extract_slots``).

Each slot's mappings are tried in order; the first that yields a value fills the slot. A mapping
applies only if its conditions hold (active form, requested slot) and the message's intent passes
its ``intent`` / ``not_intent`` filters. ``from_trigger_intent`` applies while a form is active
(one its conditions name, if it has any): a form runs the extraction again as it is activated, so
the message that activates it fills these slots. ``custom`` mappings are left to custom actions
(``extracted_slots`` runs them, and the domain's ``action_validate_slot_mappings``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.errors import ActionError, ActionRejected
from chatbot.project.domain import (
    REQUESTED_SLOT,
    VALIDATE_SLOT_MAPPINGS,
    Domain,
    Slot,
    SlotMapping,
)

logger = logging.getLogger(__name__)

# Runs a custom action on a conversation: its events.
RunAction = Callable[[str, Conversation], Awaitable[list[Event]]]


def conditions_hold(mapping: SlotMapping, active_loop: str | None, requested: str | None) -> bool:
    if not mapping.conditions:
        return True
    return any(
        c.active_loop == active_loop and (c.requested_slot is None or c.requested_slot == requested)
        for c in mapping.conditions
    )


def trigger_applies(mapping: SlotMapping, active_loop: str | None) -> bool:
    """Whether a ``from_trigger_intent`` mapping applies: while a form is active, one its
    conditions name if it has any (their ``requested_slot`` does not matter), as Rasa's
    ``extract_slot_value_from_predefined_mapping``."""
    if active_loop is None:
        return False
    return not mapping.conditions or any(c.active_loop == active_loop for c in mapping.conditions)


def intent_passes(mapping: SlotMapping, intent: str | None) -> bool:
    if mapping.intent and intent not in mapping.intent:
        return False
    return not (mapping.not_intent and intent in mapping.not_intent)


def entity_values(mapping: SlotMapping, entities: list[dict[str, Any]]) -> list[Any]:
    return [
        e.get("value")
        for e in entities
        if e.get("entity") == mapping.entity
        and e.get("role") == mapping.role
        and e.get("group") == mapping.group
    ]


def mapping_value(
    slot: Slot, mapping: SlotMapping, message: dict[str, Any], intent: str | None
) -> Any:
    """The value this mapping takes from the message, or None."""
    if mapping.type == "from_entity":
        values = entity_values(mapping, list(message.get("entities") or []))
        if not values:
            return None
        return values if slot.type == "list" else values[-1]  # Rasa's: the last one
    if mapping.type == "from_text":
        text = message.get("text")
        return text if isinstance(text, str) and text else None
    if mapping.type in ("from_intent", "from_trigger_intent"):
        return mapping.value if intent is not None else None
    return None


def extract_slots(conversation: Conversation, domain: Domain) -> list[Event]:
    """Slot events for the latest user message."""
    message = conversation.latest_message
    intent = conversation.latest_intent
    active = conversation.active_loop_name
    requested = conversation.slots.get(REQUESTED_SLOT)
    form = domain.forms.get(active) if active else None
    ignored = form is not None and intent in form.ignored_intents
    events: list[Event] = []
    for slot in domain.slots.values():
        in_form = form is not None and slot.name in form.required_slots
        for mapping in slot.mappings:
            if mapping.type == "custom" or not intent_passes(mapping, intent):
                continue
            if ignored and (
                not mapping.conditions or any(c.active_loop == active for c in mapping.conditions)
            ):
                # Rasa's intent_is_desired: while a form is active, its ignored_intents fill
                # no mapping that applies to it, whichever slot the mapping fills.
                continue
            if mapping.type == "from_trigger_intent":
                applies = trigger_applies(mapping, active)
            else:
                # Text and intent mappings of a form's slot only fill the slot the form asked for.
                asked = not in_form or mapping.type == "from_entity" or requested == slot.name
                applies = asked and conditions_hold(mapping, active, requested)
            if not applies:
                continue
            value = mapping_value(slot, mapping, message, intent)
            if value is not None:
                events.append(ev.slot(slot.name, value))
                break
    return events


def custom_mapping_actions(conversation: Conversation, domain: Domain) -> list[str]:
    """Actions named by ``type: custom`` mappings (``action: X``) that apply now, each once,
    in the order of the slots (Rasa 3 runs them after the other mappings)."""
    intent = conversation.latest_intent
    active = conversation.active_loop_name
    requested = conversation.slots.get(REQUESTED_SLOT)
    names: list[str] = []
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            if mapping.type != "custom" or not mapping.action or mapping.action in names:
                continue
            if conditions_hold(mapping, active, requested) and intent_passes(mapping, intent):
                names.append(mapping.action)
    return names


async def extracted_slots(
    conversation: Conversation, domain: Domain, run: RunAction
) -> list[Event]:
    """Rasa 3's ``action_extract_slots`` after a user message: the slot mappings' values,
    then the ``type: custom`` mappings' actions, then, where the domain has the custom action
    ``action_validate_slot_mappings`` (rasa-sdk's ``ValidationAction``: its ``extract_<slot>``
    and ``validate_<slot>`` methods), that action on all of them. A slot it sets is its
    value; one it leaves alone keeps the extracted value; a value it rejects (``None``) is
    never stored. An action that fails is logged and its part left out, as in Rasa."""
    extracted = extract_slots(conversation, domain)
    actions = custom_mapping_actions(conversation, domain)
    validating = VALIDATE_SLOT_MAPPINGS in domain.actions
    if not (actions or validating):
        return extracted
    trial = conversation.fork()  # what the actions see: the conversation with the extraction
    trial.extend(extracted)
    for action in actions:
        # ``type: custom`` mappings with ``action:``: the action fills the slot.
        found = await _mapping_action(run, action, trial)
        trial.extend(found)
        extracted += found
    if validating:
        validated = await _mapping_action(run, VALIDATE_SLOT_MAPPINGS, trial)
        named = {e["name"] for e in validated if e.get("event") == "slot"}
        extracted = [
            *validated,
            *(e for e in extracted if e.get("event") != "slot" or e["name"] not in named),
        ]
    return extracted


async def _mapping_action(run: RunAction, action: str, conversation: Conversation) -> list[Event]:
    """The slot (those that change a value) and bot events of a slot mapping's action."""
    try:
        events = await run(action, conversation)
    except (ActionError, ActionRejected) as exc:
        logger.error("conversation %s: slot mapping %s", conversation.sender_id, exc)
        return []
    return [
        e
        for e in events
        if e.get("event") == "bot"
        or (e.get("event") == "slot" and conversation.slots.get(e["name"]) != e.get("value"))
    ]
