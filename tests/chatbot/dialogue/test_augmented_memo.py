"""Rasa's AugmentedMemoizationPolicy: where the recent states match no story, the conversation's
past is forgotten a turn at a time (slots set before the cut included) until one does."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.agent import TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from chatbot.project.domain import Domain
from chatbot.project.loader import load_project
from training.dialogue import fit_memo, training_data
from training.train import train_project

DOMAIN = """
version: "3.1"
intents: [greet, ask_weather, inform, thank]
entities: [name, city]
slots:
  name: {type: text, mappings: [{type: from_entity, entity: name}]}
  city: {type: text, mappings: [{type: from_entity, entity: city}]}
responses:
  utter_greet: [{text: hi}]
  utter_nice_to_meet: [{text: nice to meet you}]
  utter_weather: [{text: sunny}]
  utter_welcome: [{text: you are welcome}]
  utter_ok: [{text: ok}]
  utter_weather_in_city: [{text: sunny in your city}]
"""
DATA = """
version: "3.1"
stories:
- story: introduce
  steps:
  - intent: inform
    entities: [{name: Ann}]
  - slot_was_set: [{name: Ann}]
  - action: utter_nice_to_meet
- story: weather
  steps:
  - intent: ask_weather
  - action: utter_weather
  - intent: thank
  - action: utter_welcome
- story: weather in the city
  steps:
  - intent: inform
    entities: [{city: Oslo}]
  - slot_was_set: [{city: Oslo}]
  - action: utter_ok
  - intent: greet
  - action: utter_greet
  - intent: greet
  - action: utter_greet
  - intent: ask_weather
  - action: utter_weather_in_city
"""
CONFIG = "policies:\n- name: {policy}\n  max_history: 3\n"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bot")
    (root / "domain.yml").write_text(DOMAIN)
    (root / "data").mkdir()
    (root / "data" / "stories.yml").write_text(DATA)
    (root / "config.yml").write_text(CONFIG.format(policy="AugmentedMemoizationPolicy"))
    return root


def fitted(bot: Path, *, augmented: bool) -> tuple[MemoizationPolicy, Domain]:
    project = load_project(bot)
    data = training_data(project)
    params = {"max_history": 3}
    return fit_memo(data.stories, project.domain, params, augmented=augmented), project.domain


def said(intent: str, **entities: str) -> dict:
    found = [{"entity": k, "value": v, "start": 0, "end": 0} for k, v in entities.items()]
    return ev.user(f"/{intent}", {"intent": {"name": intent, "confidence": 1.0}, "entities": found})


def introduced_then_asks(domain: Domain) -> Conversation:
    """Ann introduces herself (the slot is set), then asks for the weather: no story has that."""
    return Conversation(
        "ann",
        domain,
        [
            ev.action("action_session_start"),
            ev.simple("session_started"),
            ev.action("action_listen"),
            said("inform", name="Ann"),
            ev.slot("name", "Ann"),
            ev.action("utter_nice_to_meet"),
            ev.action("action_listen"),
            said("ask_weather"),
        ],
    )


def test_a_story_is_recalled_once_the_turns_before_it_are_forgotten(bot: Path) -> None:
    plain, domain = fitted(bot, augmented=False)
    augmented, _ = fitted(bot, augmented=True)
    conversation = introduced_then_asks(domain)
    assert plain.predict(conversation) is None  # the name slot and the turn before: no story
    prediction = augmented.predict(conversation)
    assert prediction is not None
    assert (prediction.action, prediction.confidence) == ("utter_weather", 1.0)
    assert prediction.policy == "AugmentedMemoizationPolicy"
    # the story goes on from there, the slot set earlier still forgotten
    conversation.extend([ev.action("utter_weather"), ev.action("action_listen"), said("thank")])
    assert plain.predict(conversation) is None
    assert augmented.predict(conversation).action == "utter_welcome"  # type: ignore[union-attr]
    # what the stories do not have at all is not made up, and excluded actions stay out
    assert augmented.predict(introduced_then_asks(domain), {"utter_weather"}) is None
    nothing = Conversation("bob", domain, [ev.action("action_listen"), said("greet")])
    assert augmented.predict(nothing) is None


def test_forgetting_starts_max_history_actions_back(bot: Path) -> None:
    """Rasa cuts the conversation to its last max_history actions before forgetting anything:
    a cut further back (here: after the name, before the city, which would match the city
    story) is never tried; every slot set before the last max_history actions is gone, and the
    weather story, which starts at the last turn, answers."""
    augmented, domain = fitted(bot, augmented=True)
    turns = [
        ev.action("action_listen"),
        said("inform", name="Ann"),
        ev.slot("name", "Ann"),
        ev.action("utter_ok"),
        ev.action("action_listen"),
        said("inform", city="Oslo"),
        ev.slot("city", "Oslo"),
        ev.action("utter_ok"),
    ]
    greetings = [
        ev.action("action_listen"),
        said("greet"),
        ev.action("utter_greet"),
        ev.action("action_listen"),
        said("greet"),
        ev.action("utter_greet"),
        ev.action("action_listen"),
        said("ask_weather"),
    ]
    recalled = augmented.predict(Conversation("cy", domain, [*turns, *greetings]))
    assert recalled is not None and recalled.action == "utter_weather"
    # the city story itself, the name not given: recalled as it is
    recalled = augmented.predict(Conversation("cy", domain, [*turns[4:], *greetings]))
    assert recalled is not None and recalled.action == "utter_weather_in_city"


def test_the_policy_is_trained_from_the_config_and_kept_in_the_model_file(
    bot: Path, tmp_path: Path
) -> None:
    model = train_project(load_project(bot), show_progress=False)
    assert [type(p) for p in model.policies] == [AugmentedMemoizationPolicy]
    path = tmp_path / "bot.model"
    model.to_file(path)
    loaded = TrainedModel.from_file(path)
    policy = loaded.policies[0]
    assert isinstance(policy, AugmentedMemoizationPolicy)
    assert policy.lookup == model.policies[0].lookup  # type: ignore[attr-defined]
    assert policy.predict(introduced_then_asks(loaded.domain)).action == "utter_weather"  # type: ignore[union-attr]
