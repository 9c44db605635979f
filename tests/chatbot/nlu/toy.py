"""A toy bot's NLU data, written with Rasa's inline annotations, shared by the NLU tests."""

from __future__ import annotations

import functools
import json
import re

from chatbot.nlu import NLUModel
from chatbot.project.training_data import (
    EntityAnnotation,
    LookupTable,
    NLUData,
    NLUExample,
    RegexFeature,
)
from training.nlu import train_nlu

_MARKUP = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]+)\)|(?P<long>\{[^}]+\}))")


def example(intent: str, marked: str) -> NLUExample:
    """``[Berlin](city)`` or ``[Berlin]{"entity": "city", "role": "from", "value": ...}``."""
    text, entities, last = "", [], 0
    for m in _MARKUP.finditer(marked):
        text += marked[last : m.start()]
        start = len(text)
        text += m["text"]
        spec = json.loads(m["long"]) if m["long"] else {"entity": m["short"]}
        entities.append(
            EntityAnnotation(
                start,
                len(text),
                spec.get("value", m["text"]),
                spec["entity"],
                spec.get("role"),
                spec.get("group"),
            )
        )
        last = m.end()
    return NLUExample(text + marked[last:], intent, tuple(entities))


def _city(name: str, role: str) -> str:
    return f'[{name}]{{"entity": "city", "role": "{role}"}}'


def _pizza(size: str, kind: str, group: str) -> str:
    return (
        f'[{size}]{{"entity": "size", "group": "{group}"}} '
        f'[{kind}]{{"entity": "pizza", "group": "{group}"}}'
    )


FLIGHTS = [
    ("Berlin", "Paris"),
    ("London", "Rome"),
    ("Madrid", "Vienna"),
    ("Oslo", "Lisbon"),
    ("Prague", "Dublin"),
    ("Paris", "Berlin"),
    ("Rome", "Madrid"),
    ("Vienna", "London"),
]
FLIGHT_TEMPLATES = [
    "fly from {a} to {b}",
    "i want to fly from {a} to {b}",
    "book a flight from {a} to {b} please",
    "a ticket to {b} from {a}",
]
PIZZAS = [("large", "margherita"), ("small", "salami"), ("medium", "funghi"), ("large", "hawaii")]

EXAMPLES = [
    *(
        example("greet", t)
        for t in ["hello", "hi", "hey there", "good morning", "hello bot", "hi friend", "howdy"]
    ),
    *(
        example("goodbye", t)
        for t in ["bye", "goodbye", "see you later", "bye bye", "good night", "farewell"]
    ),
    *(
        example(
            "book_flight",
            FLIGHT_TEMPLATES[i % len(FLIGHT_TEMPLATES)].format(
                a=_city(a, "from"), b=_city(b, "to")
            ),
        )
        for i, (a, b) in enumerate(FLIGHTS)
    ),
    example(
        "book_flight",
        'fly from [NYC]{"entity": "city", "role": "from", "value": "New York"} to '
        + _city("Oslo", "to"),
    ),
    *(
        example("order_pizza", f"i want a {_pizza(s1, k1, '1')} and a {_pizza(s2, k2, '2')}")
        for (s1, k1), (s2, k2) in zip(PIZZAS, PIZZAS[1:] + PIZZAS[:1], strict=True)
    ),
    *(example("order_pizza", f"one {_pizza(s, k, '1')} please") for s, k in PIZZAS[:3]),
    *(
        example("inform_zip", t)
        for t in [
            "my zip code is [12345](zipcode)",
            "the zip is [90210](zipcode)",
            "zip [10115](zipcode)",
            "i live in [75001](zipcode)",
        ]
    ),
    *(
        example("faq/ask_name", t)
        for t in ["what is your name", "who are you", "tell me your name", "what do i call you"]
    ),
    *(
        example("faq/ask_weather", t)
        for t in ["how is the weather", "is it raining", "what is the weather like", "is it sunny"]
    ),
]


def toy_data() -> NLUData:
    return NLUData(
        examples=list(EXAMPLES),
        synonyms={"nyc": "New York", "big apple": "New York"},
        regexes=[RegexFeature("zipcode", r"\b\d{5}\b")],
        lookups=[
            LookupTable(
                "city",
                (
                    "Berlin",
                    "Paris",
                    "London",
                    "Rome",
                    "Madrid",
                    "Vienna",
                    "Oslo",
                    "Lisbon",
                    "Prague",
                    "Dublin",
                    "New York",
                    "Hamburg",
                    "Tokyo",
                ),
            )
        ],
    )


@functools.cache
def trained_toy_model() -> NLUModel:
    """The toy bot's model, default pipeline, trained once per test run (a second or two)."""
    return train_nlu(toy_data(), [], seed=7, show_progress=False)
