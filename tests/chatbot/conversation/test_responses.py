from __future__ import annotations

import random

import pytest

from chatbot.conversation.responses import fill_templates, render
from tests.helpers import domain_of

DOMAIN = domain_of(
    """
slots:
  name: {type: text, mappings: []}
  vip: {type: bool, mappings: []}
responses:
  utter_greet:
    - text: "Hello {name}!"
    - text: "Hi from Slack, {name}"
      channel: slack
  utter_offer:
    - text: "Welcome back, VIP"
      condition: [{type: slot, name: vip, value: true}]
    - text: "Welcome"
  utter_menu:
    - text: "Pick one, {name}"
      buttons:
        - {title: "Thai for {name}", payload: '/inform{{"cuisine": "thai"}}'}
      image: "https://example.com/{name}.png"
      custom: {kind: "menu", who: "{name}"}
"""
)


@pytest.mark.parametrize(
    ("channel", "expected"),
    [(None, "Hello Ann!"), ("rest", "Hello Ann!"), ("slack", "Hi from Slack, Ann")],
)
def test_variation_by_channel(channel: str | None, expected: str) -> None:
    message = render(DOMAIN, "utter_greet", {"name": "Ann"}, channel=channel, rng=random.Random(0))
    assert message is not None and message["text"] == expected


@pytest.mark.parametrize(
    ("vip", "expected"), [(True, "Welcome back, VIP"), (False, "Welcome"), (None, "Welcome")]
)
def test_conditional_variation(vip: bool | None, expected: str) -> None:
    message = render(DOMAIN, "utter_offer", {"vip": vip})
    assert message is not None and message["text"] == expected


def test_templates_fill_text_buttons_image_and_custom() -> None:
    message = render(DOMAIN, "utter_menu", {"name": "Ann"})
    assert message is not None
    assert message["text"] == "Pick one, Ann"
    assert message["buttons"] == [
        {"title": "Thai for Ann", "payload": '/inform{"cuisine": "thai"}'}
    ]
    assert message["image"] == "https://example.com/Ann.png"
    assert message["custom"] == {"kind": "menu", "who": "Ann"}


def test_unknown_names_are_left_as_written_and_unset_slots_say_none_as_in_rasa() -> None:
    assert fill_templates("Hi {name}, {missing}", {"name": "Bo"}) == "Hi Bo, {missing}"
    # Rasa's docs: "If such a slot doesn't exist or is empty, the variable gets filled with None"
    message = render(DOMAIN, "utter_greet", {"name": None})
    assert message is not None and message["text"] == "Hello None!"


@pytest.mark.parametrize(
    ("value", "shown"), [(5.0, "5.0"), (3, "3"), (True, "True"), (["a", "b"], "['a', 'b']")]
)
def test_values_are_written_as_rasas_str_format_writes_them(value: object, shown: str) -> None:
    message = render(DOMAIN, "utter_greet", {"name": value})
    assert message is not None and message["text"] == f"Hello {shown}!"


RANKED = domain_of(
    """
slots:
  vip: {type: bool, mappings: []}
  city: {type: text, mappings: []}
responses:
  utter_ranked:
    - text: "rest and vip"
      channel: rest
      condition: [{type: slot, name: vip, value: true}]
    - text: "vip anywhere"
      condition: [{type: slot, name: vip, value: true}]
    - text: "default"
  utter_city:
    - text: "Berlin it is"
      condition: [{type: slot, name: city, value: berlin}]
    - text: "somewhere"
    - text: "the string true"
      condition: [{type: slot, name: vip, value: "true"}]
"""
)


@pytest.mark.parametrize(
    ("channel", "vip", "expected"),
    [
        ("rest", True, "rest and vip"),
        # the channel's variations all fail their conditions: the channel-less ones answer
        ("rest", False, "default"),
        ("slack", True, "vip anywhere"),
        (None, False, "default"),
    ],
)
def test_variations_are_ranked_as_rasas_response_variation_filter(
    channel: str | None, vip: bool, expected: str
) -> None:
    message = render(RANKED, "utter_ranked", {"vip": vip}, channel=channel)
    assert message is not None and message["text"] == expected


def test_string_conditions_match_whatever_the_case_and_only_strings() -> None:
    # Rasa 3.4.1+ compares strings with casefold(); a bool slot is not the string "true"
    for city in ("Berlin", "BERLIN", "berlin"):
        message = render(RANKED, "utter_city", {"city": city, "vip": True})
        assert message is not None and message["text"] == "Berlin it is"
    message = render(RANKED, "utter_city", {"city": "Paris", "vip": True})
    assert message is not None and message["text"] == "somewhere"


def test_unknown_response_renders_nothing() -> None:
    assert render(DOMAIN, "utter_nope", {}) is None


@pytest.mark.parametrize(
    ("button", "shown"),
    [
        ({"title": "Yes", "payload": "/affirm"}, "  1: Yes (/affirm)"),
        # insurance-demo's misspelt key: shown as Rasa's shell shows it, not "(None)"
        ({"title": "Yes", "paylaod": "/affirm"}, '  1: Yes - {"paylaod": "/affirm"}'),
        ({"title": "Site", "url": "https://x.example"}, '  1: Site - {"url": "https://x.example"}'),
    ],
)
def test_a_button_is_shown_in_the_terminal_as_rasas_shell_shows_it(
    button: dict[str, str], shown: str
) -> None:
    from chatbot.conversation.messages import terminal_lines

    assert terminal_lines({"text": "Sure?", "buttons": [button]}) == ["Sure?", shown]
