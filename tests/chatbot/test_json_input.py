"""JSON from outside: what Python's json reads beyond JSON is malformed input, not a value or a
RecursionError."""

from __future__ import annotations

import math

import pytest

from chatbot.json_input import NotJSON, TooDeep, loads
from chatbot.nlu.intent_payload import parse_intent_payload


def test_json_is_read_as_json() -> None:
    assert loads(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "é", None, True]}
    assert loads('"x"') == "x"
    assert loads("1e308") == 1e308


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_nan_and_infinity_are_not_json(text: str) -> None:
    with pytest.raises(NotJSON, match="is not a JSON value"):
        loads(text)


@pytest.mark.parametrize(
    "text", ["1e999", '{"a": [-1e400]}', "1" * 400 + ".0", "1" * 400, '{"a": [-' + "9" * 309 + "]}"]
)
def test_a_number_beyond_a_floats_range_is_not_read_as_infinity(text: str) -> None:
    # Python reads them as infinity and writes that back as `Infinity`, which is no JSON.
    with pytest.raises(NotJSON, match="is beyond the range of a number"):
        loads(text)
    assert loads("[1e308, -1e308, 1e-400, 12345678901234567890123]") == [
        1e308,
        -1e308,
        0.0,
        12345678901234567890123,
    ]
    assert loads("9" * 308) == int("9" * 308)  # a float holds it (about 1e308)


def test_nesting_deeper_than_python_reads_is_not_json() -> None:
    with pytest.raises(TooDeep, match="nests too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
    assert isinstance(TooDeep("x"), ValueError)  # where malformed JSON is handled, so is this


@pytest.mark.parametrize(
    "text",
    [
        '/greet{"cuisine": NaN}',
        '/greet{"cuisine": ' + "[" * 5000 + "]" * 5000 + "}",
        '/greet{"cuisine": "thai"',
    ],
)
def test_a_payload_with_entities_that_are_not_json_is_ordinary_text(text: str) -> None:
    assert parse_intent_payload(text) is None


def test_a_payload_with_json_entities() -> None:
    parsed = parse_intent_payload('/greet{"n": 1e308, "cuisine": ["thai", "lao"]}')
    assert parsed is not None
    values = [e["value"] for e in parsed["entities"]]
    assert values == [1e308, "thai", "lao"] and not any(
        isinstance(v, float) and not math.isfinite(v) for v in values
    )
