"""Rules that do not say what their actions set: Rasa's RulePolicy refuses to train on them
("Incomplete rules found"); we warn, naming the rule's step, the slot or form, and the rule that
sets it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.project.loader import load_project
from chatbot.project.project import Project
from tests.helpers import DOMAINS, project_files
from tests.test_cli import chatbot
from training.dialogue import train_policies
from training.incomplete_rules import MAX_LISTED, incomplete_rules, long_rules

DOMAIN = """
version: "3.1"
intents: [greet, inform, request_topic, stop]
entities: [topic]
slots:
  known:
    type: bool
    mappings: [{type: custom}]
  topic:
    type: text
    mappings: [{type: from_entity, entity: topic}]
  note:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
forms:
  topic_form: {required_slots: [topic]}
actions: [action_check]
responses:
  utter_welcome_back: [{text: welcome back}]
  utter_hello: [{text: hello}]
  utter_ask_topic: [{text: which topic?}]
  utter_done: [{text: done}]
  utter_stop: [{text: stopped}]
"""
CONFIG = "policies: [{name: MemoizationPolicy}, {name: RulePolicy}]\n"
KNOWN = """\
- rule: a known user
  steps:
  - intent: greet
  - action: action_check
  - slot_was_set:
    - known: true
    - note: seen
  - action: utter_welcome_back
"""
NEW_USER = """\
- rule: a new user
  steps:
  - intent: greet
  - action: action_check
  - action: utter_hello
"""
FORM = """\
- rule: activate the form
  steps:
  - intent: request_topic
  - action: topic_form
  - active_loop: topic_form
- rule: submit the form
  condition:
  - active_loop: topic_form
  steps:
  - action: topic_form
  - active_loop: null
  - action: utter_done
"""


def _project(root: Path, rules: str, *, config: str = CONFIG) -> Project:
    files = {
        "domain.yml": DOMAIN,
        "config.yml": config,
        "data/rules.yml": f'version: "3.1"\nrules:\n{rules}',
    }
    return project_files(root, files)


def test_a_rule_that_does_not_name_a_slot_its_action_sets_elsewhere(tmp_path: Path) -> None:
    (warning,) = incomplete_rules(_project(tmp_path, KNOWN + NEW_USER))
    assert warning.startswith(
        f"{tmp_path}/data/rules.yml:14: rule 'a new user': after 'action_check' it does not say "
        f"the value of slot 'known' (as rule 'a known user' ({tmp_path}/data/rules.yml:3)) that "
        "the action sets in other rules"
    ), warning
    assert "Incomplete rules found" in warning and "'note'" not in warning  # note: no features


def test_a_rule_that_does_not_name_the_form_its_action_sets_elsewhere(tmp_path: Path) -> None:
    rules = (
        FORM
        + """\
- rule: the form, then stop
  steps:
  - intent: greet
  - action: topic_form
  - intent: stop
  - action: utter_stop
"""
    )
    (warning,) = incomplete_rules(_project(tmp_path, rules))
    assert warning.startswith(
        f"{tmp_path}/data/rules.yml:18: rule 'the form, then stop': after 'topic_form' it does "
        "not say which form is active, which the action sets in other rules: 'null' (as rule "
        f"'submit the form' ({tmp_path}/data/rules.yml:8)), 'topic_form' (as rule 'activate the "
        f"form' ({tmp_path}/data/rules.yml:3))"
    ), warning


@pytest.mark.parametrize(
    "rules",
    [
        # Each rule says what the action set: a value, null, or a condition before it.
        KNOWN
        + NEW_USER.replace(
            "  - action: utter_hello",
            "  - slot_was_set:\n    - known: null\n  - action: utter_hello",
        ),
        KNOWN
        + NEW_USER.replace(
            "  steps:", "  condition:\n  - slot_was_set:\n    - known: false\n  steps:"
        ),
        # The action ends the rule, and the rule does not wait for the user.
        KNOWN
        + NEW_USER.replace("  - action: utter_hello\n", "")
        + "  wait_for_user_input: false\n",
        # A slot set after the user's turn is the user's (an entity's), not the action's.
        KNOWN.replace("  - action: action_check\n  - slot_was_set:", "  - slot_was_set:").replace(
            "  - action: utter_welcome_back",
            "  - action: action_check\n  - action: utter_welcome_back",
        )
        + NEW_USER,
        # Forms: every rule names the form once its action has run (a condition names it too).
        FORM,
        FORM
        + "- rule: stop in the form\n  condition:\n  - active_loop: topic_form\n  steps:\n"
        + "  - action: topic_form\n  - intent: stop\n  - action: utter_stop\n",
    ],
)
def test_rules_that_say_what_their_actions_set_give_no_warning(tmp_path: Path, rules: str) -> None:
    assert incomplete_rules(_project(tmp_path, rules)) == []


@pytest.mark.parametrize(
    "config",
    [
        "policies: [{name: RulePolicy, check_for_contradictions: false}]\n",
        "policies: [{name: MemoizationPolicy}]\n",
    ],
)
def test_no_check_where_it_is_turned_off_or_there_are_no_rules(tmp_path: Path, config: str) -> None:
    assert incomplete_rules(_project(tmp_path, KNOWN + NEW_USER, config=config)) == []


def test_at_most_twenty_are_listed_then_a_count(tmp_path: Path) -> None:
    rules = KNOWN + "".join(NEW_USER.replace("a new user", f"new user {i}") for i in range(25))
    warnings = incomplete_rules(_project(tmp_path, rules))
    assert len(warnings) == MAX_LISTED + 1
    assert warnings[-1] == "... and 5 more incomplete rule steps"


@pytest.mark.parametrize("bot", ["moodbot", "restaurant", "knowledgebase"])
def test_the_example_bots_have_none(bot: str) -> None:
    assert incomplete_rules(load_project(DOMAINS / bot)) == []


def test_training_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = _project(tmp_path, KNOWN + NEW_USER)
    with caplog.at_level(logging.WARNING):
        train_policies(project)
    found = [r for r in caplog.records if "rule 'a new user': after" in r.getMessage()]
    assert len(found) == 1 and found[0].levelno == logging.WARNING


def test_data_validate_fails_on_them_with_fail_on_warnings(tmp_path: Path) -> None:
    """(Without the flag they are warnings, which do not fail it: the rules' contradictions'
    test runs that path.)"""
    _project(tmp_path, KNOWN + NEW_USER)
    result = chatbot("data", "validate", "--fail-on-warnings", cwd=tmp_path)
    assert result.returncode == 1
    assert "data/rules.yml:14: rule 'a new user': after 'action_check'" in result.stderr


TWO_TURNS = """\
- rule: greet, then ask
  steps:
  - intent: greet
  - action: utter_hello
  - or:
    - intent: inform
    - intent: request_topic
  - action: utter_done
"""


def test_a_rule_with_two_user_turns_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path, TWO_TURNS + NEW_USER)
    assert long_rules(project) == [
        f"{tmp_path}/data/rules.yml:3: rule 'greet, then ask' has 2 user turns: Rasa refuses "
        "rules with more than one ('Rules are not meant to hardcode a state machine'); write "
        "it as a story, or set 'restrict_rules: false' on RulePolicy"
    ]
    config = "policies: [{name: RulePolicy, restrict_rules: false}]\n"
    assert long_rules(_project(tmp_path, TWO_TURNS, config=config)) == []
