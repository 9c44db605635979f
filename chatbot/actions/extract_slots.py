"""Slot filling from slot mappings after each user message (Rasa 3's ``action_extract_slots``).

Each slot's mappings are tried in order; the first that yields a value fills the slot. A mapping
applies only if its conditions hold (active form, requested slot) and the message's intent passes
its ``intent`` / ``not_intent`` filters. ``from_trigger_intent`` is applied by the form when it is
activated; ``custom`` mappings are left to custom actions.
"""

from __future__ import annotations

from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.project.domain import REQUESTED_SLOT, Domain, Slot, SlotMapping


def conditions_hold(mapping: SlotMapping, active_loop: str | None, requested: str | None) -> bool:
    if not mapping.conditions:
        return True
    return any(
        c.active_loop == active_loop and (c.requested_slot is None or c.requested_slot == requested)
        for c in mapping.conditions
    )


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
        return values if slot.type == "list" else values[0]
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
        if in_form and ignored:
            continue
        for mapping in slot.mappings:
            if mapping.type in ("from_trigger_intent", "custom"):
                continue
            # Text and intent mappings of a form's slot only fill the slot the form asked for.
            if in_form and mapping.type != "from_entity" and requested != slot.name:
                continue
            if not conditions_hold(mapping, active, requested) or not intent_passes(
                mapping, intent
            ):
                continue
            value = mapping_value(slot, mapping, message, intent)
            if value is not None:
                events.append(ev.slot(slot.name, value))
                break
    return events


def trigger_intent_slots(conversation: Conversation, domain: Domain, form_name: str) -> list[Event]:
    """``from_trigger_intent`` values for the message that activates ``form_name``: slots of the
    form, or slots whose mapping conditions name the form."""
    intent = conversation.latest_intent
    required = domain.forms[form_name].required_slots if form_name in domain.forms else ()
    events: list[Event] = []
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            if mapping.type != "from_trigger_intent" or not intent_passes(mapping, intent):
                continue
            if mapping.conditions:
                if not any(c.active_loop == form_name for c in mapping.conditions):
                    continue
            elif slot.name not in required:
                continue
            events.append(ev.slot(slot.name, mapping.value))
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
