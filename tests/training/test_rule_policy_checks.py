"""Configs without RulePolicy: Rasa 2's stand-ins get one, the others are warned as Rasa warns."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.agent import Agent
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import Origin
from chatbot.project.loader import load_project
from tests.helpers import train_files
from training.dialogue import check_rule_policy, policy_configs

DOMAIN = """
version: "3.1"
intents: [greet, inform, restart]
entities: [topic]
slots:
  topic:
    type: text
    mappings: [{type: from_entity, entity: topic}]
forms:
  topic_form: {required_slots: [topic]}
responses:
  utter_greet: [{text: hi}]
  utter_ask_topic: [{text: which topic?}]
  utter_done: [{text: "noted: {topic}"}]
"""
STORIES = """
version: "3.1"
stories:
- story: greet
  steps: [{intent: greet}, {action: utter_greet}]
- story: the form
  steps:
  - intent: inform
  - action: topic_form
  - active_loop: topic_form
  - active_loop: null
  - action: utter_done
"""
RULES = """
version: "3.1"
rules:
- rule: submit
  condition: [{active_loop: topic_form}]
  steps: [{action: topic_form}, {active_loop: null}, {action: utter_done}]
"""


def _policy(name: str, line: int, **params: object) -> ComponentConfig:
    return ComponentConfig(name, dict(params), Origin("config.yml", line))


def test_a_rasa_2_form_policy_brings_a_rule_policy(caplog: pytest.LogCaptureFixture) -> None:
    configs = [_policy("MemoizationPolicy", 2), _policy("TEDPolicy", 3), _policy("FormPolicy", 4)]
    with caplog.at_level(logging.INFO, logger="training.dialogue"):
        kinds = policy_configs(configs)
    assert [(kind, config.name) for kind, config in kinds] == [
        ("memo", "MemoizationPolicy"),
        ("lstm", "TEDPolicy"),
        ("rules", "RulePolicy"),
    ]
    assert kinds[-1][1].origin == Origin("config.yml", 4)
    assert "config.yml:4: RulePolicy added for FormPolicy" in caplog.text


def test_a_rasa_2_fallback_policy_gives_the_rule_policy_its_threshold() -> None:
    configs = [
        _policy("FallbackPolicy", 2, core_threshold=0.45, fallback_action_name="action_sorry"),
        _policy("MappingPolicy", 3),
    ]
    ((kind, rules),) = policy_configs(configs, notices=False)
    assert kind == "rules"
    assert rules.params == {
        "core_fallback_threshold": 0.45,
        "core_fallback_action_name": "action_sorry",
    }


def test_no_rule_policy_is_added_beside_one_the_config_names() -> None:
    configs = [_policy("RulePolicy", 2, core_fallback_threshold=0.2), _policy("FormPolicy", 3)]
    assert [(k, c.name, c.params) for k, c in policy_configs(configs, notices=False)] == [
        ("rules", "RulePolicy", {"core_fallback_threshold": 0.2}),
    ]


async def test_a_rasa_2_config_runs_its_form_to_the_end(tmp_path: Path) -> None:
    config = "policies: [{name: MemoizationPolicy}, {name: FormPolicy}]\n"
    model = train_files(
        tmp_path,
        {
            "domain.yml": DOMAIN,
            "data/stories.yml": STORIES,
            "data/rules.yml": RULES,
            "config.yml": config,
        },
    )
    assert [policy.name for policy in model.policies] == ["MemoizationPolicy", "RulePolicy"]
    agent = Agent(model)
    assert [m["text"] for m in await agent.handle_text("/inform", "ann")] == ["which topic?"]
    replies = await agent.handle_text('/inform{"topic": "jazz"}', "ann")
    assert [m["text"] for m in replies] == ["noted: jazz"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "policies: [{name: MemoizationPolicy}, {name: TEDPolicy}]\n",
            [
                "config.yml:1: the domain has forms (topic_form) but 'policies' has no "
                "RulePolicy, which runs them",
                "config.yml:1: the data has 1 rules (the first: 'submit' (",
                "config.yml:1: 'policies' has no RulePolicy: the intents 'restart' and 'back'",
            ],
        ),
        ("policies: [{name: MemoizationPolicy}, {name: RulePolicy}]\n", []),
        ("policies: [{name: FormPolicy}]\n", []),
    ],
    ids=["none", "rule-policy", "stand-in"],
)
def test_without_rule_policy_forms_rules_and_restart_are_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, config: str, expected: list[str]
) -> None:
    files = {
        "domain.yml": DOMAIN,
        "data/stories.yml": STORIES,
        "data/rules.yml": RULES,
        "config.yml": config,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with caplog.at_level(logging.WARNING, logger="training.dialogue"):
        check_rule_policy(load_project(tmp_path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(expected), warnings
    for message, start in zip(warnings, expected, strict=True):
        assert message.startswith(f"{tmp_path / start}"), message


async def test_a_rules_only_bot_trains_no_lstm_and_falls_back_as_rasa(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's TEDPolicy learns from stories only: a bot of rules alone gets its fallback where
    no rule applies (ours, learning the rules too, answered "hi" with the goodbye rule)."""
    rules = """
version: "3.1"
rules:
- rule: bye
  steps: [{intent: goodbye}, {action: utter_bye}]
- rule: challenge
  steps: [{intent: bot_challenge}, {action: utter_iamabot}]
"""
    domain = """
version: "3.1"
intents: [greet, goodbye, bot_challenge]
responses:
  utter_bye: [{text: bye}]
  utter_iamabot: [{text: I am a bot}]
  utter_default: [{text: sorry?}]
"""
    config = "policies: [{name: MemoizationPolicy}, {name: RulePolicy}, {name: TEDPolicy}]\n"
    files = {"domain.yml": domain, "data/rules.yml": rules, "config.yml": config}
    with caplog.at_level(logging.WARNING, logger="training.dialogue"):
        model = train_files(tmp_path, files)
    assert [policy.name for policy in model.policies] == ["MemoizationPolicy", "RulePolicy"]
    assert "TEDPolicy: the project has rules and no stories" in caplog.text
    agent = Agent(model)
    assert [m["text"] for m in await agent.handle_text("/greet", "u")] == ["sorry?"]
    assert [m["text"] for m in await agent.handle_text("/goodbye", "u")] == ["bye"]
