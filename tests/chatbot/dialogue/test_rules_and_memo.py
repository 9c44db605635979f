"""RulePolicy and MemoizationPolicy trained from small stories, and the ensemble around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import encode_state
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.memoization import MemoizationPolicy
from chatbot.dialogue.rules import RulePolicy
from chatbot.project.loader import load_project
from training.dialogue import fit_memo, fit_rules, training_data

DOMAIN = """
version: "3.1"
intents: [greet, goodbye, ask, inform, chitchat, affirm]
entities: [topic]
slots:
  logged_in: {type: bool, mappings: [{type: from_intent, intent: affirm, value: true}]}
  topic: {type: text, mappings: [{type: from_entity, entity: topic}]}
forms:
  topic_form: {required_slots: [topic]}
responses:
  utter_greet: [{text: hi}]
  utter_welcome_back: [{text: welcome back}]
  utter_bye: [{text: bye}]
  utter_answer: [{text: answer}]
  utter_chitchat: [{text: chitchat}]
  utter_first: [{text: first}]
  utter_ask_topic: [{text: topic?}]
  utter_done: [{text: done}]
"""
DATA = """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: greet a logged in user
  condition: [{slot_was_set: [{logged_in: true}]}]
  steps: [{intent: greet}, {action: utter_welcome_back}]
- rule: first message
  conversation_start: true
  steps: [{intent: ask}, {action: utter_first}]
- rule: bye without listening
  wait_for_user_input: false
  steps: [{intent: goodbye}, {action: utter_bye}]
- rule: activate form
  steps: [{intent: inform}, {action: topic_form}, {active_loop: topic_form}]
- rule: chitchat inside the form
  condition: [{active_loop: topic_form}]
  steps: [{intent: chitchat}, {action: utter_chitchat}, {action: topic_form}, {active_loop: topic_form}]
- rule: submit
  condition: [{active_loop: topic_form}]
  steps: [{action: topic_form}, {active_loop: null}, {action: utter_done}]
stories:
- story: ask twice
  steps: [{intent: greet}, {action: utter_greet}, {intent: ask}, {action: utter_answer}, {intent: ask}, {action: utter_answer}, {action: utter_bye}]
"""


@pytest.fixture(scope="module")
def policies(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RulePolicy, MemoizationPolicy, object]:
    root = tmp_path_factory.mktemp("bot")
    (root / "domain.yml").write_text(DOMAIN)
    (root / "data").mkdir()
    (root / "data" / "data.yml").write_text(DATA)
    project = load_project(root)
    data = training_data(project)
    return (
        fit_rules(data.rules, project.domain, {}),
        fit_memo(data.stories, project.domain, {"max_history": 3}),
        project.domain,
    )


def conversation(domain: object, *events: dict) -> Conversation:
    conv = Conversation("t", domain)  # type: ignore[arg-type]
    conv.extend(
        [
            ev.action("action_session_start"),
            ev.simple("session_started"),
            ev.action("action_listen"),
        ]
    )
    conv.extend(events)
    return conv


def said(intent: str) -> list[dict]:
    return [ev.user(f"/{intent}", {"intent": {"name": intent, "confidence": 1.0}})]


def test_rules_predict_and_listen_after(policies: tuple) -> None:
    rules, _, domain = policies
    conv = conversation(domain, *said("greet"))
    assert rules.predict(conv).action == "utter_greet"
    conv.append(ev.action("utter_greet"))
    assert rules.predict(conv).action == "action_listen"


def test_the_more_specific_rule_wins(policies: tuple) -> None:
    rules, _, domain = policies
    conv = conversation(domain, ev.slot("logged_in", True), *said("greet"))
    assert rules.predict(conv).action == "utter_welcome_back"


def test_conversation_start_rule_only_at_the_start(policies: tuple) -> None:
    rules, _, domain = policies
    assert rules.predict(conversation(domain, *said("ask"))).action == "utter_first"
    later = conversation(
        domain, *said("greet"), ev.action("utter_greet"), ev.action("action_listen"), *said("ask")
    )
    assert rules.predict(later) is None


def test_wait_for_user_input_false_does_not_predict_listen(policies: tuple) -> None:
    rules, _, domain = policies
    conv = conversation(domain, *said("goodbye"), ev.action("utter_bye"))
    assert rules.predict(conv) is None


def test_form_loop_runs_until_rejected_then_rules_take_over(policies: tuple) -> None:
    rules, _, domain = policies
    conv = conversation(
        domain, *said("inform"), ev.action("topic_form"), ev.active_loop("topic_form")
    )
    assert rules.predict(conv).action == "action_listen"  # the form asked; listen
    conv.extend([ev.action("action_listen"), *said("chitchat")])
    assert rules.predict(conv).action == "topic_form"  # happy path: the form runs first
    conv.append(ev.action_rejected("topic_form"))
    assert rules.predict(conv).action == "utter_chitchat"
    conv.append(ev.action("utter_chitchat"))
    assert rules.predict(conv).action == "topic_form"  # back to the form


def test_a_rule_starting_with_an_action_uses_it_as_context(policies: tuple) -> None:
    rules, _, domain = policies
    conv = conversation(
        domain, *said("inform"), ev.action("topic_form"), ev.active_loop("topic_form")
    )
    conv.extend(
        [ev.action("action_listen"), *said("inform"), ev.action("topic_form"), ev.active_loop(None)]
    )
    assert rules.predict(conv).action == "utter_done"


def test_restart_intent_runs_action_restart(policies: tuple) -> None:
    rules, _, domain = policies
    assert rules.predict(conversation(domain, *said("restart"))).action == "action_restart"


def test_excluded_actions_are_not_predicted(policies: tuple) -> None:
    rules, _, domain = policies
    assert rules.predict(conversation(domain, *said("greet")), excluded={"utter_greet"}) is None


def test_memoization_recalls_stories_exactly(policies: tuple) -> None:
    _, memo, domain = policies
    conv = conversation(
        domain, *said("greet"), ev.action("utter_greet"), ev.action("action_listen"), *said("ask")
    )
    assert memo.predict(conv).action == "utter_answer"
    conv.extend(
        [
            ev.action("utter_answer"),
            ev.action("action_listen"),
            *said("ask"),
            ev.action("utter_answer"),
        ]
    )
    assert memo.predict(conv).action == "utter_bye"
    assert memo.predict(conversation(domain, *said("chitchat"))) is None


def test_policies_round_trip_through_export(policies: tuple) -> None:
    rules, memo, _ = policies
    rules2 = RulePolicy.from_export(*rules.export())
    memo2 = MemoizationPolicy.from_export(*memo.export())
    assert rules2.rules == rules.rules
    assert memo2.lookup == memo.lookup
    yaml.safe_dump(rules.export()[1])  # JSON/YAML-serialisable, no Python objects inside


def test_each_memorized_state_is_written_once(policies: tuple) -> None:
    """Keys name their states by index into one table: a large project's 17,833 keys of 5
    states held 163 distinct ones, written out in every key (8.5 MB of its model file)."""
    _, memo, _ = policies
    meta = memo.export()[1]
    states, entries = meta["states"], meta["lookup"]
    distinct = {s for key in memo.lookup for s in key if s is not None}
    assert len(states) == len(distinct) < sum(s is not None for k in memo.lookup for s in k)
    assert len({json.dumps(s) for s in states}) == len(states)
    assert all(i is None or isinstance(i, int) for key, _ in entries for i in key)
    assert MemoizationPolicy.from_export({}, meta).lookup == memo.lookup
    assert json.dumps(memo.export()) == json.dumps(memo.export())  # the same bytes each time


def test_memorized_states_hold_only_what_is_set(policies: tuple) -> None:
    """Every slot that influences the conversation is in every state; a memorized state keeps
    only the features that have a value (a 300-slot domain made a 184 MB model file), and a
    model file from before, whose states hold the unset ones too, still recalls."""
    _, memo, domain = policies
    pairs = [pair for state in memo.export()[1]["states"] for pair in state]
    assert pairs and all(value is not None for _, value in pairs)
    assert not any(name == "slot:topic" for name, _ in pairs)  # never set in the story
    conv = conversation(
        domain, *said("greet"), ev.action("utter_greet"), ev.action("action_listen"), *said("ask")
    )
    full = conv.recent_states(3)  # unset slots and all, as older files held them
    assert any(value is None for state in full for _, value in state)
    old = [[[encode_state(s) for s in [None, *full][-3:] if s is not None], "utter_answer"]]
    old[0][0] = [None] * (3 - len(old[0][0])) + old[0][0]
    older = MemoizationPolicy.from_export({}, {"max_history": 3, "lookup": old})
    assert older.predict(conv).action == "utter_answer"


def test_ensemble_prefers_confidence_then_priority_and_falls_back(policies: tuple) -> None:
    rules, memo, domain = policies
    ensemble = PolicyEnsemble([memo, rules], fallback_threshold=0.3)
    conv = conversation(domain, *said("greet"))
    prediction = ensemble.predict(conv)
    assert (prediction.action, prediction.policy) == ("utter_greet", "RulePolicy")
    unknown = ensemble.predict(
        conversation(domain, *said("affirm"), ev.action("utter_greet"), ev.action("utter_greet"))
    )
    assert unknown.action == "action_default_fallback"
    assert (
        ensemble.predict(conv, excluded={"utter_greet", "action_default_fallback"}).action
        == "action_listen"
    )


def test_contradicting_stories_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.yml").write_text(
        "stories:\n"
        "- story: one\n  steps: [{intent: greet}, {action: utter_greet}]\n"
        "- story: two\n  steps: [{intent: greet}, {action: utter_answer}]\n"
    )
    project = load_project(tmp_path)
    memo = fit_memo(training_data(project).stories, project.domain, {})
    assert "stories 'one' and 'two' contradict each other" in caplog.text
    assert (
        memo.predict(conversation(project.domain, *said("greet"))) is None
    )  # ambiguous: forgotten
