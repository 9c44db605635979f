"""Rendering a domain response (``utter_*``) into a bot message, as Rasa's templated NLG does.

A variation is chosen as Rasa's ``ResponseVariationFilter`` chooses: the first non-empty of the
output channel's conditional variations that hold, its unconditional ones, the channel-less
conditional ones that hold and the channel-less unconditional ones (a string condition matches
whatever its case, as Rasa 3.4.1+); then ``{slot}`` placeholders in text, buttons, image, custom
payloads, ... are filled from the slots, an unset slot as ``None`` and a value as Python's
``str`` writes it (``5.0``), as Rasa's interpolator fills them.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from chatbot.project.domain import Domain, ResponseVariation

logger = logging.getLogger(__name__)

# Keys of a variation that are sent as-is (after template filling) in a bot message.
MESSAGE_KEYS = ("text", "buttons", "image", "custom", "attachment", "quick_replies", "elements")
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][\w\-]*)\}(?!\})")


def choose_variation(
    variations: Sequence[ResponseVariation],
    slots: Mapping[str, Any],
    channel: str | None,
    rng: random.Random | None = None,
) -> ResponseVariation | None:
    def holds(v: ResponseVariation) -> bool:
        return all(_condition_holds(slots.get(c.name), c.value) for c in v.conditions)

    matching = [v for v in variations if not v.conditions or holds(v)]
    for_channel = [v for v in matching if channel is not None and v.channel == channel]
    without_channel = [v for v in matching if v.channel is None]
    for pool in (for_channel, without_channel):
        candidates = [v for v in pool if v.conditions] or pool
        if candidates:
            return (rng or random).choice(candidates)
    return None


def _condition_holds(slot_value: Any, value: Any) -> bool:
    # Rasa's ``_matches_filled_slots``: strings whatever their case, anything else by ``==``.
    if isinstance(slot_value, str) and isinstance(value, str):
        return slot_value.casefold() == value.casefold()
    return bool(slot_value == value)


def fill_templates(value: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``{name}`` with ``str(values[name])`` in every string inside ``value`` (None,
    5.0, ['a', 'b'], as ``str.format`` writes them); unknown names are left as written and
    ``{{escaped}}`` braces unescaped."""
    if isinstance(value, str):
        filled = _PLACEHOLDER.sub(
            lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), value
        )
        return filled.replace("{{", "{").replace("}}", "}") if "{{" in filled else filled
    if isinstance(value, list):
        return [fill_templates(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill_templates(v, values) for k, v in value.items()}
    return value


def placeholders(value: Any) -> set[str]:
    """The ``{name}`` placeholders in every string inside ``value`` (not ``{{escaped}}`` ones)."""
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, list):
        return {n for v in value for n in placeholders(v)}
    if isinstance(value, dict):
        return {n for v in value.values() for n in placeholders(v)}
    return set()


def render(
    domain: Domain,
    response_name: str,
    slots: Mapping[str, Any],
    *,
    channel: str | None = None,
    extra: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any] | None:
    """The bot message for a response (keys of MESSAGE_KEYS that are set), or None if the domain
    has no variation that applies."""
    variations = domain.responses.get(response_name)
    if not variations:
        return None
    variation = choose_variation(variations, slots, channel, rng)
    if variation is None:
        logger.warning("response %s has no variation for channel %s", response_name, channel)
        return None
    values = dict(slots)  # every slot, an unset one as None (Rasa's current_slot_values)
    if extra:
        values.update(extra)
    message = {k: fill_templates(v, values) for k, v in variation.data.items()}
    message.setdefault("text", None)
    return message
