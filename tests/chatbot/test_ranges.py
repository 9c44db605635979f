from __future__ import annotations

import pytest

from chatbot.ranges import ABOVE_0, AT_LEAST_1, FRACTION, SHARE, out_of_range, whole_number


def test_the_ends_of_each_range() -> None:
    assert SHARE.holds(0.0) and SHARE.holds(0.9995) and not SHARE.holds(1.0)
    assert FRACTION.holds(1.0) and not FRACTION.holds(1.01) and not FRACTION.holds(-0.01)
    assert not ABOVE_0.holds(0.0) and ABOVE_0.holds(1e-9)
    assert AT_LEAST_1.holds(1) and not AT_LEAST_1.holds(0)
    # YAML's .inf and .nan (a learning rate of .inf trained a network of NaNs)
    assert not ABOVE_0.holds(float("inf")) and not AT_LEAST_1.holds(float("nan"))


def test_messages_name_the_key_as_written_and_leave_unset_values_alone() -> None:
    ranges = {"dropout": SHARE, "epochs": AT_LEAST_1}
    values = {"dropout": 1.5, "epochs": None, "other": -1}
    assert out_of_range(values, ranges, {"dropout": "drop_rate"}) == [
        "'drop_rate' must be at least 0 and under 1, got 1.5"
    ]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("12", 12),
        ("007", 7),
        ("999999999", 999999999),
        ("1234567890", None),  # more digits than asked for
        ("9" * 5000, None),  # int() would refuse it: a ValueError
        ("\u00b2", None),  # "²".isdigit() is True, int("²") a ValueError
        ("\u0663", None),  # an Arabic-Indic 3: a digit, not one a query or a prompt means
        ("", None),
        ("-1", None),
        (" 1", None),
        ("1.0", None),
    ],
)
def test_whole_numbers_are_ascii_digits_only(text: str, number: int | None) -> None:
    assert whole_number(text) == number
