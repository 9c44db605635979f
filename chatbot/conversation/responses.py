"""Rendering a domain response (``utter_*``) into a bot message, as Rasa's templated NLG does.

A variation is chosen among those for the output channel (falling back to channel-less ones) whose
conditions hold (conditional variations that match are preferred to unconditional ones); then
``{slot}`` placeholders in text, buttons, image, custom payloads, ... are filled from the slots.
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
        return all(
            _condition_value(slots.get(c.name)) == _condition_value(c.value) for c in v.conditions
        )

    for_channel = [v for v in variations if channel is not None and v.channel == channel]
    pool = for_channel or [v for v in variations if v.channel is None]
    conditional = [v for v in pool if v.conditions and holds(v)]
    candidates = conditional or [v for v in pool if not v.conditions]
    if not candidates:
        return None
    return (rng or random).choice(candidates)


def _condition_value(value: Any) -> Any:
    # Rasa compares condition values loosely: "true" matches True, numbers match their strings.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fill_templates(value: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``{name}`` with ``values[name]`` in every string inside ``value``; unknown names and
    ``{{escaped}}`` braces are left as written."""
    if isinstance(value, str):
        filled = _PLACEHOLDER.sub(
            lambda m: _format(values[m.group(1)]) if m.group(1) in values else m.group(0), value
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


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
    values = {k: v for k, v in slots.items() if v is not None}
    if extra:
        values.update(extra)
    message = {k: fill_templates(v, values) for k, v in variation.data.items()}
    message.setdefault("text", None)
    return message
