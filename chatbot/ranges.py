"""Allowed ranges of numeric settings (config.yml), and the message for a value outside one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple


class Range(NamedTuple):
    low: float
    high: float
    says: str  # how an error message puts it: "must be {says}"
    below_high: bool = False  # the high end itself is outside

    def holds(self, value: float) -> bool:
        if finite_number(value) is None:  # NaN fails every comparison; infinity is no setting
            return False
        return self.low <= value < self.high if self.below_high else self.low <= value <= self.high


AT_LEAST_1 = Range(1, math.inf, "at least 1")
AT_LEAST_0 = Range(0, math.inf, "0 or more")
ABOVE_0 = Range(math.ulp(0.0), math.inf, "above 0")
SHARE = Range(0.0, 1.0, "at least 0 and under 1", below_high=True)  # dropout rates
FRACTION = Range(0.0, 1.0, "between 0 and 1")  # thresholds


def out_of_range(
    values: Mapping[str, Any], ranges: Mapping[str, Range], names: Mapping[str, str] | None = None
) -> list[str]:
    """ "'key' must be ..., got value" for each value outside its range (``None`` is left alone:
    it means "not set"). ``names``: the name the user wrote for a key, where it differs."""
    names = names or {}
    return [
        f"'{names.get(key, key)}' {_wanted(value, ranges[key])}, got {value!r:.40}"
        for key, value in values.items()
        if key in ranges and value is not None and not ranges[key].holds(value)
    ]


def _wanted(value: Any, allowed: Range) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and finite_number(value) is None:
        return "is too large"  # more than 308 digits: no float holds it
    return f"must be {allowed.says}"


def finite_number(value: Any) -> float | None:
    """``value`` as a float where it is a finite number (an int or a float, not a bool), else
    None: NaN, infinity, text, and integers too large for a float (``float()`` and
    ``math.isfinite`` raise OverflowError on an integer of more than 308 digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def whole_number(text: str, max_digits: int = 9) -> int | None:
    """``text`` as a whole number where it is one written in ASCII digits (at most
    ``max_digits`` of them), else None. ``str.isdigit`` alone also takes "²" and "٣", and
    ``int`` refuses the first and any text of more than 4,300 digits: a ValueError."""
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)
