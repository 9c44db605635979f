"""The dialogue state at one prediction step, as hashable features.

A state is what the policies see before choosing an action: the latest user intent and entity
types, the previous action, slot features by slot type (Rasa semantics), and the goal (active form,
its requested slot, its missing slots). Rules and memoization compare states exactly; the LSTM
featurizer turns them into vectors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from chatbot.project.domain import Domain, Slot
from chatbot.project.stories import ANY_VALUE

# A state is a frozen, sorted tuple of (feature, value) pairs, so it can key a dict.
State = tuple[tuple[str, Any], ...]

INTENT = "intent"
ENTITIES = "entities"
TEXT = "text"
PREV_ACTION = "prev_action"
ACTIVE_LOOP = "active_loop"
REQUESTED = "requested_slot"
MISSING = "missing_slots"
SLOT_PREFIX = "slot:"


def has_prior_events(state: State) -> bool:
    """Whether anything happened before ``state``: a user message or an action other than
    listening. Stories that go different ways from a state without (a story that starts with
    the bot's action) do not contradict each other, as in Rasa (its ``StoryConflict``'s
    ``conflict_has_prior_events``)."""
    features = dict(state)
    if features.get(INTENT) is not None or features.get(TEXT) is not None:
        return True
    return features.get(PREV_ACTION) not in (None, "action_listen")


def slot_feature(slot: Slot, value: Any) -> Any:
    """A slot value as the policies see it (None: not set), by slot type as in Rasa; a project's
    slot class gives its ``as_feature()`` numbers as a tuple (None where all are zero)."""
    if slot.kind is not None:
        if value == ANY_VALUE:  # a story's slot without a value: what Rasa's reader sets
            value = "filled" if slot.type == "text" else ["filled"] if slot.type == "list" else None
        features: tuple[float, ...] | None = slot.kind.features(value)
        return features
    if value is None:
        return None
    if slot.type in ("text", "list"):
        return True if value == ANY_VALUE else bool(value) if slot.type == "list" else True
    if value == ANY_VALUE:
        # A story naming the slot without a value: only text and list slots are "set" by it;
        # any other type reads as unset, as Rasa's story reader has it.
        return None
    if slot.type == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "y")
        return bool(value)
    if slot.type == "categorical":
        text = str(value).lower()
        known = {str(v).lower() for v in slot.values}
        return text if text in known else "__other__"
    if slot.type == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        except OverflowError:  # an integer no float holds (an in-process action's, say)
            number = math.inf if value > 0 else -math.inf
        if math.isnan(number):  # "nan" from a user's payload: unset, not a NaN in the tracker
            return None
        low, high = slot.min_value, slot.max_value
        if high <= low:
            return 1.0
        return round((min(max(number, low), high) - low) / (high - low), 6)
    return None  # "any" slots never influence the conversation


def entity_features(
    domain: Domain, intent: str | None, entities: Iterable[Mapping[str, Any]]
) -> frozenset[str]:
    """Entity types of a message as features: ``entity``, ``entity#role``, ``entity#group``."""
    used = domain.intents[intent].used_entities if intent in domain.intents else None
    features: set[str] = set()
    for ent in entities:
        name = ent.get("entity")
        if not isinstance(name, str):
            continue
        declared = domain.entities.get(name)
        if declared is not None and not declared.influence_conversation:
            continue
        if used is not None and name not in used:
            continue
        features.add(name)
        for key in ("role", "group"):
            if ent.get(key):
                features.add(f"{name}#{ent[key]}")
    return frozenset(features)


def featurized_slots(domain: Domain) -> tuple[Slot, ...]:
    return tuple(s for s in domain.slots.values() if s.influence_conversation and s.type != "any")


def make_state(
    domain: Domain,
    *,
    intent: str | None,
    entities: frozenset[str],
    text: str | None,
    prev_action: str | None,
    slots: Mapping[str, Any],
    active_loop: str | None,
) -> State:
    features: dict[str, Any] = {
        INTENT: intent,
        ENTITIES: entities,
        PREV_ACTION: prev_action,
        ACTIVE_LOOP: active_loop,
    }
    if text is not None and intent is None:
        features[TEXT] = text
    for slot in featurized_slots(domain):
        features[SLOT_PREFIX + slot.name] = slot_feature(slot, slots.get(slot.name))
    form = domain.forms.get(active_loop) if active_loop else None
    if form is not None:
        features[REQUESTED] = slots.get("requested_slot")
        features[MISSING] = frozenset(s for s in form.required_slots if slots.get(s) is None)
    return tuple(sorted(features.items()))


def state_dict(state: State) -> dict[str, Any]:
    return dict(state)


def encode_state(state: State) -> list[list[Any]]:
    """A state as JSON: frozensets become ``{"set": [...]}``, a slot class's feature tuples
    ``{"vector": [...]}``."""
    return [[k, _encoded(v)] for k, v in state]


def _encoded(value: Any) -> Any:
    if isinstance(value, frozenset):
        return {"set": sorted(value)}
    if isinstance(value, tuple):
        return {"vector": list(value)}
    return value


_SCALARS = (str, int, float, bool, type(None))


def decode_state(data: list[list[Any]]) -> State:
    """``encode_state``'s inverse. Anything it does not write (a model file made by hand or by
    another tool) is a ValueError: a state's values must be hashable and comparable."""
    if not isinstance(data, list):
        raise ValueError(f"a state must be a list of [name, value] pairs, got {_short(data)}")
    state = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"a state's entries are [name, value] pairs, got {_short(item)}")
        key, value = item
        if isinstance(value, dict) and set(value) == {"vector"}:
            numbers = value["vector"]
            if not isinstance(numbers, list) or not all(
                isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
            ):
                raise ValueError(f"state entry {key!r}: a vector of {_short(numbers)}")
            value = tuple(float(n) for n in numbers)
        elif isinstance(value, dict):
            members = value.get("set")
            if set(value) != {"set"} or not isinstance(members, list):
                raise ValueError(f"state entry {key!r}: {_short(value)} is no value")
            if not all(isinstance(m, _SCALARS) for m in members):
                raise ValueError(f"state entry {key!r}: a set of {_short(members)}")
            value = frozenset(members)
        elif not isinstance(value, _SCALARS):
            raise ValueError(f"state entry {key!r}: {_short(value)} is no value")
        state.append((key, value))
    return tuple(state)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
