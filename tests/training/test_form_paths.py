"""The LSTM tracker alone (no rules, no memorized stories) runs every example bot: forms are
unfolded from the stories (``training.form_paths``) and "anywhere" rules are shown in context."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chatbot.conversation.conversation import Conversation
from chatbot.project.domain import ACTION_LISTEN, REQUESTED_SLOT
from chatbot.project.loader import load_project
from chatbot.project.project import Project
from chatbot.project.training_data import NLUData
from tests.helpers import DOMAINS, STARTER
from training.dialogue import training_data
from training.evaluate import evaluate_stories, failed_stories_yaml
from training.form_paths import _interjections, rules_in_stories, unfold_form_paths
from training.replay import replay
from training.train import train_project

BOTS = sorted(
    p for p in DOMAINS.iterdir() if (p / "domain.yml").exists() or (p / "domain").is_dir()
)
LSTM_NAMES = ("LSTMPolicy", "TEDPolicy", "KerasPolicy")


def lstm_alone(project: Project) -> Project:
    policies = tuple(p for p in project.config.policies if p.name in LSTM_NAMES)
    assert policies, "the bot's config.yml has no LSTM policy"
    project.config = dataclasses.replace(project.config, policies=policies)
    project.nlu = NLUData()  # the stories' intents are given
    return project


@pytest.mark.parametrize("bot", [*BOTS, STARTER], ids=lambda p: p.name)
def test_every_test_story_passes_with_the_lstm_alone(bot: Path) -> None:
    project = lstm_alone(load_project(bot))
    model = train_project(project, show_progress=False)
    assert [p.name for p in model.policies] == ["LSTMPolicy"]
    evaluation = evaluate_stories(model, project.test_stories)
    assert evaluation.results
    assert evaluation.action_accuracy == 1.0, failed_stories_yaml(evaluation.results)


def _kinds(events: list[dict]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for e in events:
        if e["event"] == "action":
            out.append(("action", e["name"]))
        elif e["event"] == "user":
            out.append(("user", e["parse_data"]["intent"]["name"]))
        elif e["event"] == "slot":
            out.append(("slot", (e["name"], e["value"])))
        elif e["event"] == "active_loop":
            out.append(("loop", e["name"]))
    return out


def test_a_form_that_runs_to_its_end_is_unfolded_slot_by_slot() -> None:
    project = load_project(DOMAINS / "restaurant")
    data = training_data(project)
    happy = next(s for s in data.stories if s.name == "happy path")
    copies = unfold_form_paths([happy], project.domain, project_stories=project.stories)
    assert len(copies) == 4 and all("form path" in c.name for c in copies)
    form = project.domain.forms["restaurant_form"]
    plain = copies[0]  # copy 0 activates the form without giving any slot in the request
    kinds = _kinds(plain.events)
    start = kinds.index(("loop", "restaurant_form"))
    end = kinds.index(("loop", None))
    asked = [v[1] for k, v in kinds[start:end] if k == "slot" and v[0] == REQUESTED_SLOT]
    assert asked == list(form.required_slots)
    # Each asked slot: a listen, a user turn, the slot set, the form again (a target).
    for slot_name in form.required_slots:
        at = kinds.index(("slot", (REQUESTED_SLOT, slot_name)))
        listen, user, filled, rerun = kinds[at + 1 : at + 5]
        assert listen == ("action", ACTION_LISTEN)
        assert user[0] == "user"
        assert filled[0] == "slot" and filled[1][0] == slot_name and filled[1][1] is not None
        assert rerun == ("action", "restaurant_form")
        assert plain.targets[at + 1] and plain.targets[at + 4]
    # What follows the form is the story's own ending.
    assert kinds[end:][:4] == [
        ("loop", None),
        ("slot", (REQUESTED_SLOT, None)),
        ("action", "utter_submit"),
        ("action", "utter_slots_values"),
    ]
    # The user turns are ones the slots' mappings take: yes/no for outdoor seating.
    at = kinds.index(("slot", (REQUESTED_SLOT, "outdoor_seating")))
    assert kinds[at + 2][1] in ("affirm", "deny")
    # The reruns are learned (RulePolicy is not needed to run the form again).
    steps = replay(plain, project.domain)
    learned = [t for _, targets in steps.sequences for t in targets if t]
    assert learned.count("restaurant_form") == 1 + len(form.required_slots)


def test_the_unfolded_copies_are_reproducible_and_some_prefill_the_form() -> None:
    project = load_project(DOMAINS / "restaurant")
    data = training_data(project)
    again = training_data(project)
    assert [_kinds(c.events) for c in data.form_paths] == [
        _kinds(c.events) for c in again.form_paths
    ]
    request_entities = [
        {e["entity"] for e in ev_["parse_data"]["entities"]}
        for c in data.form_paths
        for ev_ in c.events
        if ev_["event"] == "user" and ev_["parse_data"]["intent"]["name"] == "request_restaurant"
    ]
    assert set() in request_entities and {"cuisine", "number"} in request_entities


def test_no_form_no_copies_and_interrupted_forms_keep_their_story() -> None:
    moodbot = load_project(DOMAINS / "moodbot")
    data = training_data(moodbot)
    assert unfold_form_paths(data.stories, moodbot.domain) == []
    restaurant = load_project(DOMAINS / "restaurant")
    data = training_data(restaurant)
    stop = next(s for s in data.stories if s.name.startswith("stop the form and really stop"))
    (copy, *_) = unfold_form_paths([stop], restaurant.domain)
    kinds = _kinds(copy.events)
    at = kinds.index(("loop", "restaurant_form"))
    # Only the slot the form asks for is added; the user's "stop" follows as in the story.
    assert kinds[at + 1] == ("slot", (REQUESTED_SLOT, "cuisine"))
    assert [k for k in kinds if k[0] == "user"] == [
        k for k in _kinds(stop.events) if k[0] == "user"
    ]


def test_which_rules_are_put_into_stories() -> None:
    project = load_project(DOMAINS / "restaurant")
    data = training_data(project)
    found = {
        (i.user["parse_data"]["intent"]["name"], i.actions, i.active_loop)
        for i in _interjections(data.rules, set(project.domain.forms))
    }
    assert ("bot_challenge", ("utter_iamabot",), False) in found  # anywhere
    assert ("chitchat", ("utter_chitchat",), "restaurant_form") in found  # only inside the form
    # Rules that run or submit the form are not interjections.
    assert not any(intent == "request_restaurant" for intent, _, _ in found)
    assert not any("utter_submit" in actions for _, actions, _ in found)


def test_a_rule_inside_a_form_is_followed_by_the_form_asking_again() -> None:
    project = load_project(DOMAINS / "restaurant")
    data = training_data(project)
    story = next(c for c in data.form_paths if c.name == "happy path (form path 1)")
    challenge = [r for r in data.rules if r.name.startswith("Say 'I am a bot'")]
    copies = rules_in_stories([story], challenge, project.domain, copies=20, seed=3)
    assert len(copies) == 20
    inside = 0
    for copy in copies:
        replayed = Conversation(copy.name, project.domain)
        for event in copy.events:
            replayed.append(event)  # every copy is a conversation the runtime accepts
        kinds = _kinds(copy.events)
        i = kinds.index(("user", "bot_challenge"))
        assert kinds[i - 1] == ("action", ACTION_LISTEN) and kinds[i + 1] == (
            "action",
            "utter_iamabot",
        )
        loops = [v for k, v in kinds[:i] if k == "loop"]
        if loops and loops[-1] == "restaurant_form":
            inside += 1
            asked = [v[1] for k, v in kinds[:i] if k == "slot" and v[0] == REQUESTED_SLOT][-1]
            assert kinds[i + 2 : i + 5] == [
                ("action", "restaurant_form"),
                ("slot", (REQUESTED_SLOT, asked)),
                ("action", ACTION_LISTEN),
            ]
        else:
            assert kinds[i + 2] == ("action", ACTION_LISTEN)
        # The story goes on as it was after the interjection.
        without = kinds[: i - 1] + kinds[i + 2 + (2 if inside and loops[-1] else 0) :]
        assert [k for k in without if k[0] == "user"] == [
            k for k in _kinds(story.events) if k[0] == "user"
        ]
    assert 0 < inside < 20  # the draw put it both inside and outside the form
