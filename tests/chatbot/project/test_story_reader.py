from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.stories import (
    ANY_VALUE,
    ActionStep,
    ActiveLoopStep,
    CheckpointStep,
    OrStep,
    SlotStep,
    UserStep,
)
from chatbot.project.story_reader import read_stories, stories_from_list
from chatbot.project.training_data import EntityAnnotation
from chatbot.project.yaml_io import load_yaml_text

from .conftest import write

STORIES = """\
version: "3.1"
stories:
- story: happy path
  metadata: {author: me}
  steps:
  - intent: greet
  - action: utter_greet
  - intent: inform
    entities:
    - city: Berlin
    - name
    - entity: city
      value: Paris
      role: to
    - city: Rome
      role: from
      group: g
  - slot_was_set:
    - city: Berlin
    - name
    - count: 3
  - active_loop: order_form
  - active_loop: null
  - checkpoint: after_order
  - or:
    - intent: affirm
    - intent: thanks
      entities:
      - mood: good
    - slot_was_set:
      - ok: true
  - bot: Hello there
  - metadata: {ignored: true}
- story: continues
  steps:
  - checkpoint: after_order
    slot_was_set:
    - city: Berlin
  - action: action_listen
rules:
- rule: greet at start
  conversation_start: true
  wait_for_user_input: false
  condition:
  - active_loop: order_form
  - slot_was_set:
    - city: Berlin
  steps:
  - intent: greet
  - action: utter_greet
"""


def test_reads_every_step_kind(tmp_path: Path) -> None:
    stories, rules = read_stories(write(tmp_path / "stories.yml", STORIES))
    happy, continues = stories
    assert happy.name == "happy path" and happy.kind == "story"
    assert happy.origin.line == 3
    steps = happy.steps
    assert steps[0] == UserStep(intent="greet", origin=steps[0].origin)
    assert steps[0].origin.line == 6 and steps[0].origin.file == str(tmp_path / "stories.yml")
    assert steps[1] == ActionStep(name="utter_greet", origin=steps[1].origin)
    assert isinstance(steps[2], UserStep)
    assert steps[2].entities == (
        EntityAnnotation(0, 0, "Berlin", "city"),
        EntityAnnotation(0, 0, "", "name"),
        EntityAnnotation(0, 0, "Paris", "city", role="to"),
        EntityAnnotation(0, 0, "Rome", "city", role="from", group="g"),
    )
    assert isinstance(steps[3], SlotStep)
    assert steps[3].slots == (("city", "Berlin"), ("name", ANY_VALUE), ("count", 3))
    assert steps[4] == ActiveLoopStep("order_form", steps[4].origin)
    assert steps[5] == ActiveLoopStep(None, steps[5].origin)
    assert steps[6] == CheckpointStep("after_order", steps[6].origin)
    assert isinstance(steps[7], OrStep)
    first, second, third = steps[7].alternatives
    assert isinstance(first, UserStep) and first.intent == "affirm"
    assert isinstance(second, UserStep) and second.entities[0].entity == "mood"
    assert isinstance(third, SlotStep) and third.slots == (("ok", True),)
    assert steps[8] == ActionStep(text="Hello there", origin=steps[8].origin)
    assert len(steps) == 9  # the metadata-only step is dropped
    assert continues.steps[0] == CheckpointStep(
        "after_order", continues.steps[0].origin, (("city", "Berlin"),)
    )
    [rule] = rules
    assert rule.kind == "rule"
    assert rule.conversation_start is True
    assert rule.wait_for_user_input is False
    assert [type(c) for c in rule.conditions] == [ActiveLoopStep, SlotStep]
    assert rule.conditions[0].origin.line == 45


def test_end_to_end_test_stories(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tests" / "test_stories.yml",
        """\
        stories:
        - story: e2e
          steps:
          - user: |
              hello from [Berlin]{"entity": "city", "role": "from"}
            intent: greet
          - user: just text
          - intent: /bye
          - action: utter_bye
        """,
    )
    [story], rules = read_stories(path, test=True)
    assert rules == []
    assert story.kind == "test"
    first, second, third, _ = story.steps
    assert isinstance(first, UserStep)
    assert first.intent == "greet"
    assert first.text == "hello from Berlin"
    assert first.entities == (EntityAnnotation(11, 17, "Berlin", "city", role="from"),)
    assert isinstance(second, UserStep)
    assert second.intent is None and second.text == "just text"
    assert isinstance(third, UserStep)
    assert third.intent == "bye"


def test_story_without_steps_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    data = load_yaml_text("stories:\n- story: empty\n  steps: []\n", file="s.yml")
    stories, errors = stories_from_list(data["stories"], "s.yml", "story")
    assert stories == [] and errors == []
    assert "has no steps" in caplog.text


def test_rasa_1_deactivate_form_is_read_as_deactivate_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rasa's formbot stories end a form with ``action_deactivate_form``; Rasa 3 maps it."""
    text = (
        "stories:\n- story: stop\n  steps:\n  - intent: stop\n  - action: action_deactivate_form\n"
    )
    data = load_yaml_text(text, file="s.yml")
    stories, errors = stories_from_list(data["stories"], "s.yml", "story")
    assert errors == []
    assert [step.name for step in stories[0].steps if isinstance(step, ActionStep)] == [
        "action_deactivate_loop"
    ]
    assert "s.yml:5: action_deactivate_form is the Rasa 1 name of action_deactivate_loop" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("text", "line", "needles"),
    [
        (
            """\
            stories:
            - story: s
              steps:
              - intnet: greet
            """,
            4,
            ["unknown step key (key 'intnet')", "Did you mean 'intent'?"],
        ),
        (
            """\
            stories:
            - story: s
              steps:
              - action: utter_a
                intent: greet
            """,
            4,
            ["'action' cannot be in the same step as 'intent'"],
        ),
        (
            """\
            stories:
            - story: s
              steps:
              - greet
            """,
            4,
            ["each step must be a mapping"],
        ),
        (
            """\
            stories:
            - story: s
              step:
              - intent: greet
            """,
            3,
            ["unknown key in a story (key 'step')"],
        ),
        (
            """\
            stories:
            - steps:
              - intent: greet
            """,
            2,
            ["needs a name under 'story:'"],
        ),
        (
            """\
            rules:
            - rule: r
              condition:
              - intent: greet
              steps:
              - action: utter_a
            """,
            4,
            ["a rule condition can only be slot_was_set or active_loop"],
        ),
        (
            """\
            rules:
            - rule: r
              steps:
              - checkpoint: c
              - action: utter_a
            """,
            4,
            ["rules cannot use checkpoints"],
        ),
        (
            """\
            stories:
            - story: s
              steps:
              - or:
                - action: utter_a
            """,
            5,
            ["an 'or' alternative can only be intent, user or slot_was_set"],
        ),
        (
            """\
            stories:
            - story: s
              steps:
              - slot_was_set:
                  city: Berlin
            """,
            4,
            ["'slot_was_set' must be a list"],
        ),
        (
            """\
            stories:
            - story: s
              steps:
              - user: hi [there]{x}
            """,
            4,
            ["malformed entity annotation"],
        ),
        (
            """\
            rules:
            - rule: r
              conversation_start: maybe
              steps:
              - intent: greet
            """,
            3,
            ["'conversation_start' of rule 'r' must be true or false"],
        ),
    ],
)
def test_story_errors(tmp_path: Path, text: str, line: int, needles: list[str]) -> None:
    path = write(tmp_path / "stories.yml", text)
    with pytest.raises(ProjectErrors) as info:
        read_stories(path)
    [error] = info.value.errors
    assert f"stories.yml:{line}:" in str(error)
    for needle in needles:
        assert needle in str(error)


def test_every_bad_step_is_reported_and_good_ones_kept() -> None:
    data = load_yaml_text(
        textwrap.dedent(
            """\
            stories:
            - story: s
              steps:
              - intent: greet
              - foo: 1
              - action: utter_a
              - bar: 2
            """
        ),
        file="s.yml",
    )
    stories, errors = stories_from_list(data["stories"], "s.yml", "story")
    assert [e.line for e in errors] == [5, 7]
    assert len(stories[0].steps) == 2


def test_a_user_step_written_as_a_shortcut_gives_its_entities(tmp_path: Path) -> None:
    """As Rasa (its test_end_to_end_story_with_shortcut_intent): `user: '/greet{...}'`."""
    path = write(
        tmp_path / "stories.yml",
        """\
        stories:
        - story: s
          steps:
          - user: '/greet{"name": "Ann", "age": 7}'
            intent: greet
          - action: utter_greet
          - user: /bye
        """,
    )
    stories, _ = read_stories(path)
    first, _, last = stories[0].steps
    assert isinstance(first, UserStep) and first.intent == "greet"
    assert [(e.entity, e.value) for e in first.entities] == [("name", "Ann"), ("age", "7")]
    assert isinstance(last, UserStep) and last.intent == "bye" and last.entities == ()


def test_with_user_text_the_entities_key_is_not_read(tmp_path: Path) -> None:
    """As Rasa: the entities of a `user:` step are its annotations; `entities:` goes with an
    intent-only step."""
    path = write(
        tmp_path / "stories.yml",
        """\
        stories:
        - story: s
          steps:
          - user: hi
            intent: greet
            entities:
            - specialty: cardiology
          - action: utter_greet
          - intent: inform
            entities:
            - specialty: cardiology
        """,
    )
    stories, _ = read_stories(path)
    with_text, _, intent_only = stories[0].steps
    assert isinstance(with_text, UserStep) and with_text.entities == ()
    assert isinstance(intent_only, UserStep)
    assert [(e.entity, e.value) for e in intent_only.entities] == [("specialty", "cardiology")]


def test_an_annotation_rasa_does_not_read_is_plain_text_in_a_story(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "stories.yml",
        """\
        stories:
        - story: s
          steps:
          - user: hi [there](x
          - action: utter_hi
        """,
    )
    with caplog.at_level(logging.WARNING):
        [story], _ = read_stories(path)
    assert story.steps[0].text == "hi [there](x"  # type: ignore[union-attr]
    assert "stories.yml:4:" in caplog.text and "read as plain text" in caplog.text
