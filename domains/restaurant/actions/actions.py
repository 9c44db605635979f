"""Custom actions of the restaurant bot, written against rasa-sdk.

`validate_restaurant_form` checks every slot that `restaurant_form` collects (rasa-sdk warns
about a slot without a `validate_<slot>` method at every turn that fills it). The form
itself (asking for each missing slot, one by one) is declared in domain.yml; this action
only accepts or rejects the values the user gave. Run it with an action server
(`python -m rasa_sdk --actions actions`, matching endpoints.yml) or in-process.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

SUPPORTED_CUISINES = (
    "chinese",
    "french",
    "greek",
    "indian",
    "italian",
    "japanese",
    "korean",
    "mexican",
    "spanish",
    "thai",
    "vegetarian",
    "vietnamese",
)

MAX_PREFERENCES = 500  # characters of free text kept


def _as_positive_int(value: Any) -> int | None:
    """`value` as a positive whole number, or None if it is not one ("4", 4, 4.0 -> 4)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if number <= 0 or not number.is_integer():
        return None
    return int(number)


class ValidateRestaurantForm(FormValidationAction):
    """Validates the slots of `restaurant_form`."""

    def name(self) -> str:
        return "validate_restaurant_form"

    @staticmethod
    def cuisine_db() -> tuple[str, ...]:
        """The cuisines we can book (a real bot would ask a database)."""
        return SUPPORTED_CUISINES

    def validate_cuisine(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Accept a supported cuisine (case-insensitive); otherwise ask again."""
        cuisine = str(slot_value).strip().lower() if slot_value is not None else ""
        if cuisine in self.cuisine_db():
            return {"cuisine": cuisine}
        dispatcher.utter_message(response="utter_wrong_cuisine")
        return {"cuisine": None}

    def validate_num_people(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Accept a positive whole number of people; otherwise ask again."""
        number = _as_positive_int(slot_value)
        if number is not None:
            return {"num_people": number}
        dispatcher.utter_message(response="utter_wrong_num_people")
        return {"num_people": None}

    def validate_outdoor_seating(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Accept a yes or a no (the slot's mappings give true or false); else ask again."""
        if isinstance(slot_value, bool):
            return {"outdoor_seating": slot_value}
        answer = str(slot_value).strip().lower() if slot_value is not None else ""
        if answer in ("true", "yes"):
            return {"outdoor_seating": True}
        if answer in ("false", "no"):
            return {"outdoor_seating": False}
        return {"outdoor_seating": None}

    def validate_preferences(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Keep the preferences as the user wrote them, trimmed and at most 500 characters."""
        text = " ".join(str(slot_value).split())[:MAX_PREFERENCES] if slot_value else ""
        return {"preferences": text or None}
