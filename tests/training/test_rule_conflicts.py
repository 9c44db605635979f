"""Stories and rules that the rules contradict: Rasa's RulePolicy refuses to train on them
("Contradicting rules or stories found"); we warn, naming the step, the story and the rule."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.project.loader import load_project
from chatbot.project.project import Project
from tests.helpers import DOMAINS, project_files
from tests.test_cli import chatbot
from training.dialogue import train_policies
from training.rule_conflicts import MAX_LISTED, rule_conflicts

DOMAIN = """
version: "3.1"
intents: [greet, faq, chitchat, inform, request_topic, stop]
entities: [topic]
slots:
  topic:
    type: text
    mappings: [{type: from_entity, entity: topic}]
forms:
  topic_form: {required_slots: [topic]}
responses:
  utter_greet: [{text: hi}]
  utter_gpt: [{text: gpt}]
  utter_ask_more: [{text: anything else?}]
  utter_chitchat: [{text: chat}]
  utter_other: [{text: other}]
  utter_ask_topic: [{text: which topic?}]
  utter_done: [{text: "noted: {topic}"}]
  utter_one: [{text: one}]
  utter_two: [{text: two}]
"""
CONFIG = "policies: [{name: MemoizationPolicy}, {name: RulePolicy}]\n"
RULES = """
version: "3.1"
rules:
- rule: respond to FAQs
  steps:
  - intent: faq
  - action: utter_gpt
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
  - slot_was_set:
    - requested_slot: null
  - action: utter_done
- rule: chitchat in the form
  condition:
  - active_loop: topic_form
  steps:
  - intent: chitchat
  - action: utter_chitchat
  - action: topic_form
  - active_loop: topic_form
- rule: greet, and ask on
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_more
  wait_for_user_input: false
- rule: after one, stop
  steps:
  - action: utter_one
  - intent: stop
  - action: utter_two
"""
CONTRADICTING = """
version: "3.1"
stories:
- story: fallback for FAQs
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_more
  - intent: faq
  - action: utter_other
"""


def _project(root: Path, stories: str, *, rules: str = RULES, config: str = CONFIG) -> Project:
    files = {
        "domain.yml": DOMAIN,
        "config.yml": config,
        "data/rules.yml": rules,
        "data/stories.yml": stories,
    }
    return project_files(root, files)


def test_a_story_a_rule_contradicts_is_named_with_its_step_and_the_rule(tmp_path: Path) -> None:
    (warning,) = rule_conflicts(_project(tmp_path, CONTRADICTING))
    assert warning.startswith(
        f"{tmp_path}/data/stories.yml:10: story 'fallback for FAQs' "
        f"({tmp_path}/data/stories.yml:4) runs 'utter_other', but rule 'respond to FAQs' "
        f"({tmp_path}/data/rules.yml:4) predicts 'utter_gpt' there: that wins at run time"
    ), warning
    assert "Contradicting rules or stories found" in warning


# A story that goes on after the leading action of the rule 'after one, stop' without the user.
AFTER_ONE = """\
- story: after one, something else than the rule's user turn
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_more
  - action: utter_one
  - action: utter_other
"""

AGREEING = (
    """
version: "3.1"
stories:
- story: FAQs, as the rule says
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_more
  - intent: faq
  - action: utter_gpt
- story: the form, a digression, its end and a step after it
  steps:
  - intent: request_topic
  - action: topic_form
  - active_loop: topic_form
  - slot_was_set:
    - requested_slot: topic
  - intent: chitchat
  - action: utter_chitchat
  - action: topic_form
  - intent: inform
    entities:
    - topic: bots
  - action: topic_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_done
  - intent: faq
  - action: utter_gpt
- story: the form stopped, its own way
  steps:
  - intent: request_topic
  - action: topic_form
  - active_loop: topic_form
  - intent: stop
  - action: utter_other
  - action: action_deactivate_loop
  - active_loop: null
- story: a FAQ inside the form, then the user again
  steps:
  - intent: request_topic
  - action: topic_form
  - active_loop: topic_form
  - intent: faq
  - action: utter_gpt
  - intent: stop
  - action: action_deactivate_loop
  - active_loop: null
"""
    + AFTER_ONE
)


def test_stories_that_follow_the_rules_give_no_warning(tmp_path: Path) -> None:
    """A step after ``wait_for_user_input: false``, a form's loop, its digression (the form
    rejects there, the rule for it answers), its end, a digression the rules know nothing of,
    a listen after a rule that knows nothing of forms (Rasa learns "do not predict the form"
    there from the story itself), and a story that goes on after a rule's leading action
    (rasa#8176)."""
    assert rule_conflicts(_project(tmp_path, AGREEING)) == []


@pytest.mark.parametrize(
    ("steps", "line", "written", "predicted", "rule"),
    [
        # After a rule's last action the rule listens, where the story goes on.
        (
            "  - intent: faq\n  - action: utter_gpt\n  - action: utter_ask_more\n",
            7,
            "runs 'utter_ask_more'",
            "waits for the user there (a rule ends by listening; 'wait_for_user_input: false'",
            "rule 'respond to FAQs'",
        ),
        # The story listens, where the rule goes on (it says 'wait_for_user_input: false').
        (
            "  - intent: greet\n  - action: utter_greet\n  - intent: faq\n  - action: utter_gpt\n",
            6,
            "waits for the user after 'utter_greet'",
            "predicts 'utter_ask_more'",
            "rule 'greet, and ask on'",
        ),
        # Inside the form: the form rejects, and the rule for the digression answers.
        (
            "  - intent: request_topic\n  - action: topic_form\n  - active_loop: topic_form\n"
            "  - intent: chitchat\n  - action: utter_other\n",
            9,
            "runs 'utter_other'",
            "predicts 'utter_chitchat'",
            "rule 'chitchat in the form'",
        ),
        # After the form: the rule for its end.
        (
            "  - intent: request_topic\n  - action: topic_form\n  - active_loop: topic_form\n"
            "  - intent: inform\n  - action: topic_form\n  - active_loop: null\n"
            "  - action: utter_other\n",
            11,
            "runs 'utter_other'",
            "predicts 'utter_done'",
            "rule 'submit the form'",
        ),
    ],
)
def test_steps_the_rules_contradict(
    tmp_path: Path, steps: str, line: int, written: str, predicted: str, rule: str
) -> None:
    stories = f'version: "3.1"\nstories:\n- story: mine\n  steps:\n{steps}'
    warnings = rule_conflicts(_project(tmp_path, stories))
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        f"{tmp_path}/data/stories.yml:{line}: story 'mine' ({tmp_path}/data/stories.yml:3) "
        f"{written}, but {rule} ({tmp_path}/data/rules.yml:"
    ), warnings[0]
    assert predicted in warnings[0]


def test_a_rule_that_another_rule_contradicts(tmp_path: Path) -> None:
    rules = RULES + "- rule: FAQs, otherwise\n  steps:\n  - intent: faq\n  - action: utter_other\n"
    (warning,) = rule_conflicts(_project(tmp_path, AGREEING, rules=rules))
    assert f"rule 'FAQs, otherwise' ({tmp_path}/data/rules.yml:" in warning
    assert "runs 'utter_other', but rule 'respond to FAQs'" in warning


@pytest.mark.parametrize(
    "config",
    [
        "policies: [{name: RulePolicy, check_for_contradictions: false}]\n",
        "policies: [{name: MemoizationPolicy}]\n",
    ],
)
def test_no_check_where_it_is_turned_off_or_there_are_no_rules(tmp_path: Path, config: str) -> None:
    assert rule_conflicts(_project(tmp_path, CONTRADICTING, config=config)) == []


def test_at_most_twenty_are_listed_then_a_count(tmp_path: Path) -> None:
    story = (
        "- story: s{i}\n  steps:\n  - intent: faq\n  - action: utter_other\n  - action: utter_one\n"
    )
    stories = 'version: "3.1"\nstories:\n' + "".join(story.format(i=i) for i in range(30))
    warnings = rule_conflicts(_project(tmp_path, stories))
    assert len(warnings) == MAX_LISTED + 1
    assert warnings[-1] == "... and 10 more steps of stories or rules that the rules contradict"


@pytest.mark.parametrize("bot", ["moodbot", "restaurant", "knowledgebase"])
def test_the_example_bots_have_none(bot: str) -> None:
    assert rule_conflicts(load_project(DOMAINS / bot)) == []


def test_training_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = _project(tmp_path, CONTRADICTING)
    with caplog.at_level(logging.WARNING):
        train_policies(project)
    found = [r for r in caplog.records if "respond to FAQs" in r.getMessage()]
    assert len(found) == 1 and found[0].levelno == logging.WARNING


def test_data_validate_warns_and_fails_with_fail_on_warnings(tmp_path: Path) -> None:
    _project(tmp_path, CONTRADICTING)
    result = chatbot("data", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # a warning: Rasa refuses, we train
    assert (
        "data/stories.yml:10: story 'fallback for FAQs' (data/stories.yml:4) runs 'utter_other', "
        "but rule 'respond to FAQs' (data/rules.yml:4) predicts 'utter_gpt' there"
    ) in result.stderr
    result = chatbot("data", "validate", "--fail-on-warnings", cwd=tmp_path)
    assert result.returncode == 1 and "rule 'respond to FAQs'" in result.stderr


def test_a_step_that_checkpoints_reach_by_several_paths_is_named_once(tmp_path: Path) -> None:
    stories = """version: "3.1"
stories:
- story: greeted
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_more
  - checkpoint: asked
- story: asked by the form's end
  steps:
  - intent: request_topic
  - action: topic_form
  - active_loop: topic_form
  - active_loop: null
  - action: utter_done
  - checkpoint: asked
- story: then a FAQ
  steps:
  - checkpoint: asked
  - intent: faq
  - action: utter_other
"""
    (warning,) = rule_conflicts(_project(tmp_path, stories))
    assert warning.startswith(
        f"{tmp_path}/data/stories.yml:21: story 'greeted > then a FAQ' runs 'utter_other', "
        "but rule 'respond to FAQs'"
    ), warning


async def test_the_listen_after_a_rules_leading_action_gives_way_to_a_story(
    tmp_path: Path,
) -> None:
    """rasa#8176, as Rasa's RulePolicy does it: the ``action_listen`` a rule predicts after its
    leading action (``after one, stop``: utter_one, then the user) is deleted where a story goes
    on without the user, so the story's step happens at run time (the rule outranked it)."""
    from chatbot.agent import Agent
    from tests.helpers import train_files

    stories = 'version: "3.1"\nstories:\n' + AFTER_ONE
    files = {"domain.yml": DOMAIN, "config.yml": CONFIG, "data/rules.yml": RULES}
    model = train_files(tmp_path, {**files, "data/stories.yml": stories})
    texts = [m["text"] for m in await Agent(model).handle_text("/greet", "u")]
    assert texts == ["hi", "anything else?", "one", "other"]
