"""A knowledge base of items with attributes, its lookup tables, and the action that queries it.

The knowledge base is bAbI's format (``1 <item> <attribute> <value>`` per line), e.g.
``1 resto_rome_cheap_indian_6stars R_cuisine indian``. Attribute names map to slot names
(``R_cuisine`` -> ``cuisine``); the item itself is the ``item_slot`` (``restaurant``).

- ``lookup_entities(text)``: entities of a message whose words are values of the base (lookup
  tables, one per user-facing attribute);
- ``query(constraints)``: the items whose attributes equal the constraints, best rated first;
- ``KnowledgeBaseQueryAction``: an in-process action that queries the base with the slots and sets
  the item slot (and its attribute slots; the item's values of the queried attributes go to
  ``<item>_<attribute>``, e.g. ``restaurant_cuisine``) to the best result, remembering the others
  in a list slot; ``KnowledgeBaseNextAction`` moves on to the next result;
  ``KnowledgeBaseCountAction`` says how many items the slots match (``none``, ``one``,
  ``several``) in a categorical slot, before any query: as the action of a ``custom`` slot
  mapping it runs after every user message, so the policy knows that nothing matches what the
  user just asked for. ``knowledge_base_actions`` gives all three by name, for the action
  registry (``Agent(model, actions=knowledge_base_actions(kb, ...))``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.actions.base import Action, ActionContext
from chatbot.conversation import events as ev
from chatbot.conversation.events import Event

# bAbI's attribute names -> slot names.
BABI_ATTRIBUTES = {
    "R_cuisine": "cuisine",
    "R_location": "location",
    "R_price": "price",
    "R_number": "party_size",
    "R_rating": "rating",
    "R_phone": "phone",
    "R_address": "address",
    "R_post_code": "post_code",
    "R_area": "area",
    "R_food": "cuisine",
}
RESULTS_SLOT = "kb_results"
MATCHES_SLOT = "kb_matches"
MATCHES_VALUES = ("none", "one", "several")
_WORD = re.compile(r"\S+")


@dataclass
class KnowledgeBase:
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    item_slot: str = "restaurant"
    rating: str = "rating"

    @classmethod
    def from_babi(
        cls, path: Path, attributes: Mapping[str, str] = BABI_ATTRIBUTES
    ) -> KnowledgeBase:
        kb = cls()
        for raw in path.read_text(encoding="utf-8").splitlines():
            kb.add_line(raw, attributes)
        return kb

    def add_line(self, raw: str, attributes: Mapping[str, str] = BABI_ATTRIBUTES) -> str | None:
        """One ``[N] item attribute value`` line; returns the item (None if not such a line)."""
        parts = raw.split()
        if parts and parts[0].isdigit():
            parts = parts[1:]
        if len(parts) < 3 or parts[1] not in attributes:
            return None
        self.items.setdefault(parts[0], {})[attributes[parts[1]]] = " ".join(parts[2:])
        return parts[0]

    def values(self, attribute: str) -> set[str]:
        if attribute == self.item_slot:
            return set(self.items)
        return {a[attribute] for a in self.items.values() if attribute in a}

    def lookup_table(self, attributes: Iterable[str]) -> dict[str, str]:
        """word -> attribute for single-word values of these attributes (first attribute wins)."""
        table: dict[str, str] = {}
        for attribute in attributes:
            for value in sorted(self.values(attribute)):
                if " " not in value:
                    table.setdefault(value, attribute)
        return table

    def query(self, constraints: Mapping[str, Any]) -> list[str]:
        """Items matching every constraint, best rated first (then by name)."""
        found = [
            item
            for item, attrs in self.items.items()
            if all(attrs.get(k) == str(v) for k, v in constraints.items() if v is not None)
        ]
        return sorted(found, key=lambda i: (-_number(self.items[i].get(self.rating)), i))

    def describe(self, item: str | None, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """Slot values for an item (None: clears them): the item slot and each attribute as a slot
        of its own, except those in ``exclude`` (a query's constraints: their slots keep what the
        user asked for). The item's own values of those go to ``<item_slot>_<attribute>`` slots
        (``restaurant_cuisine``), so a response can say what the offered item has, also where the
        user left it open: "{restaurant} serves {restaurant_cuisine} food"."""
        skip = set(exclude)
        attributes = sorted({a for attrs in self.items.values() for a in attrs})
        attrs = self.items.get(item or "", {})
        values: dict[str, Any] = {self.item_slot: item}
        values.update({a: attrs.get(a) for a in attributes if a not in skip})
        values.update({f"{self.item_slot}_{a}": attrs.get(a) for a in attributes if a in skip})
        return values


def lookup_entities(text: str, table: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rasa-style entities for the words of ``text`` found in a lookup ``table``."""
    out: list[dict[str, Any]] = []
    for match in _WORD.finditer(text):
        entity = table.get(match.group(0).lower())
        if entity is not None:
            out.append(
                {
                    "entity": entity,
                    "start": match.start(),
                    "end": match.end(),
                    "value": match.group(0).lower(),
                    "extractor": "LookupTable",
                }
            )
    return out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


@dataclass
class KnowledgeBaseQueryAction(Action):
    """Queries the base with the ``constraints`` slots; sets the best item and the result list."""

    kb: KnowledgeBase
    constraints: Sequence[str]
    name: str = "action_query_knowledge_base"

    def events(self, slots: Mapping[str, Any]) -> list[Event]:
        results = self.kb.query({k: slots.get(k) for k in self.constraints})
        best = results[0] if results else None
        values = {RESULTS_SLOT: results, **self.kb.describe(best, self.constraints)}
        return [ev.slot(k, v) for k, v in values.items()]

    async def run(self, ctx: ActionContext) -> list[Event]:
        return self.events(ctx.conversation.slots)


@dataclass
class KnowledgeBaseNextAction(Action):
    """Moves the item slot on to the next result of the last query (clears it at the end)."""

    kb: KnowledgeBase
    constraints: Sequence[str]
    name: str = "action_next_knowledge_base_result"

    def events(self, slots: Mapping[str, Any]) -> list[Event]:
        results = list(slots.get(RESULTS_SLOT) or [])
        current = slots.get(self.kb.item_slot)
        at = results.index(current) + 1 if current in results else 0
        nxt = results[at] if at < len(results) else None
        return [ev.slot(k, v) for k, v in self.kb.describe(nxt, self.constraints).items()]

    async def run(self, ctx: ActionContext) -> list[Event]:
        return self.events(ctx.conversation.slots)


@dataclass
class KnowledgeBaseCountAction(Action):
    """Sets ``kb_matches`` to how many items the ``constraints`` slots match: ``none``, ``one`` or
    ``several`` (a categorical slot). Only when it changes, so that it can run after every user
    message (a ``custom`` slot mapping's action) without filling the conversation with events."""

    kb: KnowledgeBase
    constraints: Sequence[str]
    name: str = "action_count_knowledge_base"
    slot: str = MATCHES_SLOT

    def events(self, slots: Mapping[str, Any]) -> list[Event]:
        found = len(self.kb.query({k: slots.get(k) for k in self.constraints}))
        value = MATCHES_VALUES[min(found, 2)]
        return [] if slots.get(self.slot) == value else [ev.slot(self.slot, value)]

    async def run(self, ctx: ActionContext) -> list[Event]:
        return self.events(ctx.conversation.slots)


def knowledge_base_actions(kb: KnowledgeBase, constraints: Sequence[str]) -> dict[str, Action]:
    """The query, next-result and count actions by name, for ``Agent(model, actions=...)`` (as
    Rasa's ``ActionQueryKnowledgeBase``, run in-process): they read the ``constraints`` slots."""
    actions: list[Action] = [
        KnowledgeBaseQueryAction(kb, tuple(constraints)),
        KnowledgeBaseNextAction(kb, tuple(constraints)),
        KnowledgeBaseCountAction(kb, tuple(constraints)),
    ]
    return {action.name: action for action in actions}
