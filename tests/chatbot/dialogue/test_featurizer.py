"""The state featurizer: which features a dialogue state turns into, and with what values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import State
from chatbot.dialogue.featurizer import StateFeaturizer, label_names, words
from chatbot.project.domain import ACTION_DEACTIVATE_LOOP, ACTION_LISTEN, Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.stories import ANY_VALUE

DOMAIN = """
version: "3.1"
intents: [greet, inform, stop]
entities:
  - city: {roles: [from, to]}
  - size
slots:
  city: {type: text, mappings: [{type: from_entity, entity: city}]}
  vip: {type: bool, mappings: [{type: custom}]}
  seat: {type: categorical, values: [window, aisle], mappings: [{type: custom}]}
  people: {type: float, min_value: 0, max_value: 10, mappings: [{type: custom}]}
  items: {type: list, mappings: [{type: custom}]}
  note: {type: text, influence_conversation: false, mappings: [{type: custom}]}
  blob: {type: any, mappings: [{type: custom}]}
forms:
  trip_form: {required_slots: [city, people]}
responses:
  utter_greet: [{text: hi}]
e2e_actions:
  - "Where to, _name_?"
"""


@pytest.fixture(scope="module")
def domain() -> Domain:
    return domain_from_dict(yaml.safe_load(DOMAIN))


@pytest.fixture(scope="module")
def featurizer(domain: Domain) -> StateFeaturizer:
    return StateFeaturizer.build(domain, ["I want to fly to Paris"])


def named(featurizer: StateFeaturizer, state: State, parse: dict[str, Any] | None = None) -> dict:
    idx, val = featurizer.featurize(state, parse)
    return {featurizer.features[i]: v for i, v in zip(idx, val, strict=True)}


def state_after(domain: Domain, *events: dict[str, Any]) -> State:
    conversation = Conversation("test", domain, [ev.action(ACTION_LISTEN), *events])
    return conversation.current_state()


def user(intent: str | None, text: str = "", entities: list[dict[str, Any]] | None = None) -> dict:
    return ev.user(
        text, {"intent": {"name": intent, "confidence": 1.0}, "entities": entities or []}
    )


def test_intent_is_one_hot_and_the_previous_action_is_named(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    assert named(featurizer, state_after(domain, user("greet"))) == {
        "intent=greet": 1.0,
        "prev_action=action_listen": 1.0,
        "active_loop=null": 1.0,  # the domain has a form, and none is active
    }


def test_nlu_probabilities_replace_the_one_hot_intent(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    state = state_after(domain, user("greet"))
    ranking = [{"name": "greet", "confidence": 0.7}, {"name": "stop", "confidence": 0.3}]
    features = named(featurizer, state, {"intent_ranking": ranking})
    assert features["intent=greet"] == pytest.approx(0.7)
    assert features["intent=stop"] == pytest.approx(0.3)
    # A ranking whose best intent is not the state's (a forced /intent payload) is not used.
    other = [{"name": "stop", "confidence": 0.9}]
    assert named(featurizer, state, {"intent_ranking": other})["intent=greet"] == 1.0


def test_entities_with_roles_and_groups(domain: Domain, featurizer: StateFeaturizer) -> None:
    entities = [{"entity": "city", "role": "to", "value": "Paris"}, {"entity": "size"}]
    features = named(featurizer, state_after(domain, user("inform", entities=entities)))
    assert {k for k in features if k.startswith("entity=")} == {
        "entity=city",
        "entity=city#to",
        "entity=size",
    }


@pytest.mark.parametrize(
    ("slot", "value", "expected"),
    [
        ("city", "Paris", {"slot:city": 1.0}),
        ("vip", True, {"slot:vip": 1.0, "slot:vip=true": 1.0}),
        ("vip", False, {"slot:vip": 1.0}),
        ("seat", "Window", {"slot:seat=window": 1.0}),
        ("seat", "floor", {"slot:seat=__other__": 1.0}),
        ("seat", ANY_VALUE, {}),  # a story's `- seat` without a value: unset, as Rasa reads it
        ("people", 5, {"slot:people#set": 1.0, "slot:people": 0.5}),
        ("people", 50, {"slot:people#set": 1.0, "slot:people": 1.0}),
        ("people", "many", {}),  # no number: unset
        ("people", "nan", {}),  # was a NaN feature, and the tracker's every output NaN
        ("people", float("nan"), {}),
        ("people", "1e999", {"slot:people#set": 1.0, "slot:people": 1.0}),
        ("people", 10**400, {"slot:people#set": 1.0, "slot:people": 1.0}),  # was OverflowError
        ("people", float("-inf"), {"slot:people#set": 1.0}),  # at the minimum: 0
        ("items", ["a"], {"slot:items": 1.0}),
        ("items", [], {}),
        ("note", "anything", {}),  # influence_conversation: false
        ("blob", {"a": 1}, {}),  # any slots never influence the conversation
    ],
)
def test_slot_features_by_type(
    domain: Domain, featurizer: StateFeaturizer, slot: str, value: Any, expected: dict
) -> None:
    features = named(featurizer, state_after(domain, ev.slot(slot, value)))
    assert {k: v for k, v in features.items() if k.startswith("slot:")} == pytest.approx(expected)


def test_the_goal_active_form_requested_and_missing_slots(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    state = state_after(
        domain,
        user("inform"),
        ev.action("trip_form"),
        ev.active_loop("trip_form"),
        ev.slot("city", "Paris"),
        ev.slot("requested_slot", "people"),
    )
    features = named(featurizer, state)
    assert features["active_loop=trip_form"] == 1.0
    assert "active_loop=null" not in features
    assert features["requested_slot=people"] == 1.0
    assert {k for k in features if k.startswith("missing=")} == {"missing=people"}
    assert featurizer.denied(state) == ()
    # Without an active form there is nothing to deactivate.
    no_form = state_after(domain, user("stop"))
    assert featurizer.denied(no_form) == (featurizer.label_index[ACTION_DEACTIVATE_LOOP],)


def test_messages_without_intent_are_bags_of_words(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    features = named(featurizer, state_after(domain, user(None, "Fly to Paris, please")))
    # Only words of the training texts are features: not "please", nor the comma.
    assert {k for k in features if k.startswith("text=")} == {"text=fly", "text=to", "text=paris"}
    assert "intent=None" not in features


def test_end_to_end_bot_texts_are_labels_with_words(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    text = "Where to, _name_?"
    assert label_names(domain)[-1] == text
    state = state_after(domain, user("inform"), ev.action(text))
    features = named(featurizer, state)
    assert features[f"prev_action={text}"] == 1.0
    assert {k for k in features if k.startswith("prev_text=")} == {
        f"prev_text={w}" for w in words(text)
    }
    assert featurizer.label_words(text) == ["where", "to", ",", "_name_", "?"]
    assert featurizer.label_words("utter_ask_city") == ["utter", "ask", "city"]


def test_unknown_values_add_nothing(domain: Domain, featurizer: StateFeaturizer) -> None:
    state = state_after(domain, user("not_an_intent"), ev.action("not_an_action"))
    assert named(featurizer, state) == {"active_loop=null": 1.0}


def test_the_feature_list_round_trips_through_the_model_file(
    domain: Domain, featurizer: StateFeaturizer
) -> None:
    again = StateFeaturizer.from_meta(featurizer.to_meta())
    state = state_after(domain, user("inform", entities=[{"entity": "size"}]), ev.slot("vip", True))
    assert again.featurize(state) == featurizer.featurize(state)
    assert again.labels == featurizer.labels
    assert featurizer.features[0] == "<pad>" and len(set(featurizer.features)) == len(
        featurizer.features
    )
