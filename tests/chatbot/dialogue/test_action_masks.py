"""Slot-based action masks: a response that needs an unset slot is never predicted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import yaml

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.action_masks import ActionMasks
from chatbot.dialogue.featurizer import StateFeaturizer
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.dialogue.lstm_tracker import DialogueStateTracker, TrackerConfig
from chatbot.project.domain import ACTION_LISTEN, Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.stories import ActionStep, SlotStep, Story, UserStep
from training.lstm import LSTMSettings, train_lstm
from training.story_events import build

DOMAIN = """
version: "3.1"
intents: [greet, inform]
entities: [city]
slots:
  city: {type: text, mappings: [{type: from_entity, entity: city}]}
  phone: {type: any, influence_conversation: false, mappings: [{type: custom}]}
responses:
  utter_city: [{text: "you said {city}"}]
  utter_call: [{text: "call {phone} in {city}"}, {text: "call {phone}"}]
  utter_hi: [{text: "hi {name}"}, {text: "hi"}]
  utter_user: [{text: "hello {name}"}]
  utter_ask_city: [{text: where}]
"""


@pytest.fixture(scope="module")
def domain() -> Domain:
    return domain_from_dict(yaml.safe_load(DOMAIN))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_masks_come_from_slot_placeholders(domain: Domain) -> None:
    masks = ActionMasks.from_domain(domain)
    # utter_hi has a variation without slots; {name} in utter_user is not a slot: never masked.
    assert masks.to_meta() == {
        "utter_call": [["city", "phone"], ["phone"]],
        "utter_city": [["city"]],
    }
    assert sorted(masks.masked({})) == ["utter_call", "utter_city"]
    assert masks.masked({"city": "Rome"}) == ["utter_call"]
    assert masks.masked({"phone": "123"}) == ["utter_city"]  # its second variation will do
    assert ActionMasks.from_meta(masks.to_meta()) == masks


def policy_preferring(domain: Domain, label: str, masks: ActionMasks) -> LSTMPolicy:
    """A random tracker whose head scores ``label`` far above every other label."""
    featurizer = StateFeaturizer.build(domain)
    config = TrackerConfig(featurizer.num_features, featurizer.num_labels, 8, 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DialogueStateTracker(config)
    with torch.no_grad():
        model.head.bias[featurizer.label_index[label]] = 100.0
    trained = torch.ones(featurizer.num_labels, dtype=torch.bool)
    return LSTMPolicy(model, featurizer, trained, masks=masks)


def greeted(domain: Domain, sender: str, city: str | None) -> Conversation:
    conv = Conversation(sender, domain)
    conv.append(ev.action(ACTION_LISTEN))
    conv.append(ev.user("hello", {"intent": {"name": "greet", "confidence": 1.0}}))
    if city is not None:
        conv.append(ev.slot("city", city))
    return conv


def test_a_masked_response_is_predicted_only_once_its_slot_is_set(domain: Domain) -> None:
    policy = policy_preferring(domain, "utter_city", ActionMasks.from_domain(domain))
    unset = policy.predict(greeted(domain, "a", None))
    assert unset is not None and unset.action != "utter_city"
    probs = policy.probabilities(greeted(domain, "a", None))
    assert probs is not None and float(probs[policy.featurizer.label_index["utter_city"]]) == 0.0
    found = policy.predict(greeted(domain, "b", "Rome"))
    assert found is not None and found.action == "utter_city"
    # Without masks the same tracker says it with the slot unset: the mask is what stops it.
    bare = policy_preferring(domain, "utter_city", ActionMasks())
    assert (bare.predict(greeted(domain, "c", None)) or unset).action == "utter_city"


def test_a_response_with_a_slotless_variation_is_never_masked(domain: Domain) -> None:
    policy = policy_preferring(domain, "utter_hi", ActionMasks.from_domain(domain))
    prediction = policy.predict(greeted(domain, "a", None))
    assert prediction is not None and prediction.action == "utter_hi"


def test_a_loaded_policy_masks_the_same(domain: Domain) -> None:
    policy = policy_preferring(domain, "utter_city", ActionMasks.from_domain(domain))
    tensors, meta = policy.export()
    loaded = LSTMPolicy.from_export(tensors, meta)
    assert loaded.masks == policy.masks
    for sender, city in (("a", None), ("b", "Rome")):
        want = policy.predict(greeted(domain, sender, city))
        got = loaded.predict(greeted(domain, sender, city))
        assert want is not None and got is not None and got.action == want.action


def story(domain: Domain, name: str, steps: list[Any]) -> Any:
    return build(name, Story(name, "story", tuple(steps)), tuple(steps), domain)


def test_masks_that_stories_contradict_are_dropped(domain: Domain) -> None:
    greet = UserStep(intent="greet")
    fine = story(domain, "fine", [greet, SlotStep((("city", "Rome"),)), ActionStep("utter_city")])
    unfilled = story(domain, "unfilled", [greet, ActionStep("utter_call")])
    masks = ActionMasks.build(domain, [fine, unfilled])
    assert set(masks.needs) == {"utter_city"}


def test_a_trained_policy_keeps_its_masks(domain: Domain) -> None:
    greet = UserStep(intent="greet")
    inform = UserStep(intent="inform", entities=())
    stories = [
        story(
            domain,
            f"s{i}",
            [
                greet,
                ActionStep("utter_ask_city"),
                inform,
                SlotStep((("city", c),)),
                ActionStep("utter_city"),
            ],
        )
        for i, c in enumerate(("Rome", "Oslo"))
    ]
    # A rule says utter_call without the slots: a slot it does not mention may hold any value.
    steps = (UserStep(intent="inform", entities=()), ActionStep("utter_call"))
    rule = build("call", Story("call", "rule", steps), steps, domain, rule=True)
    settings = LSTMSettings(epochs=5, embed_dim=8, hidden_size=8, augmentation_factor=0)
    policy = train_lstm(domain, stories, [rule], settings=settings, show_progress=False)
    assert set(policy.masks.needs) == {"utter_city", "utter_call"}
    conv = greeted(domain, "a", None)
    conv.append(ev.action("utter_ask_city"))
    conv.append(ev.action(ACTION_LISTEN))
    conv.append(ev.user("oslo", {"intent": {"name": "inform", "confidence": 1.0}}))
    probs = policy.probabilities(conv)
    assert probs is not None
    assert float(probs[policy.featurizer.label_index["utter_city"]]) == 0.0
