"""A story's ``slot_was_set`` of a slot the domain lacks: a warning, as Rasa's story reader
gives ("Tried to set non existent slot"), and training leaves the slot out."""

from __future__ import annotations

import logging

import pytest

from chatbot.project import check_project
from training.story_events import build

from .conftest import ProjectMaker


def test_a_slot_the_domain_lacks_in_a_story_is_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's story reader warns ("Tried to set non existent slot") and trains: a Rasa project
    with such a step runs unchanged. The step sets nothing in the conversations training builds."""
    stories = """\
        stories:
        - story: s
          steps:
          - intent: greet
          - slot_was_set:
            - town: Berlin
          - action: utter_greet
          - checkpoint: c
            slot_was_set:
            - nope: 1
        """
    rules = """\
        rules:
        - rule: r
          condition:
          - slot_was_set:
            - tonw: Paris
          steps:
          - intent: greet
          - action: utter_greet
        """
    files = {"data/stories.yml": stories, "data/rules.yml": rules}
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        project, errors = check_project(make_project(files))
    assert project is not None and errors == [], [str(e) for e in errors]
    warned = sorted(
        r.getMessage() for r in caplog.records if "is not in the domain" in r.getMessage()
    )
    assert len(warned) == 3, warned
    assert (
        "rules.yml:4: slot 'tonw' is not in the domain; the story sets it to no effect" in warned[0]
    )
    assert "stories.yml:5: slot 'town' is not in the domain" in warned[1]
    assert "(key 'slot_was_set', value 'town')" in warned[1]
    assert "stories.yml:8: slot 'nope' is not in the domain" in warned[2]
    for source in (*project.stories, *project.rules):
        conversation = build(
            source.name, source, source.steps, project.domain, rule=source in project.rules
        )
        assert [e for e in conversation.events if e["event"] == "slot"] == [], source.name
