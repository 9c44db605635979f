from __future__ import annotations

from pathlib import Path

from chatbot.project.stories import ActionStep, UserStep
from chatbot.project.story_reader import read_stories
from training.story_graph import resolve

STORIES = """
stories:
- story: start
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: greeted
- story: happy branch
  steps:
  - checkpoint: greeted
  - or:
    - intent: mood_great
    - intent: affirm
  - action: utter_happy
- story: sad branch
  steps:
  - checkpoint: greeted
  - intent: mood_unhappy
  - action: utter_cheer_up
  - checkpoint: cheered
- story: loop back
  steps:
  - checkpoint: cheered
  - intent: deny
  - action: utter_greet
  - checkpoint: greeted
"""


def names(flat) -> list[str]:
    return [
        s.intent if isinstance(s, UserStep) else s.name
        for s in flat.steps
        if isinstance(s, (UserStep, ActionStep))
    ]


def test_checkpoints_and_or_expand_into_every_path(tmp_path: Path) -> None:
    (tmp_path / "s.yml").write_text(STORIES)
    stories, _ = read_stories(tmp_path / "s.yml")
    paths = {tuple(names(f)) for f in resolve(stories)}
    assert ("greet", "utter_greet", "mood_great", "utter_happy") in paths
    assert ("greet", "utter_greet", "affirm", "utter_happy") in paths
    assert (
        "greet",
        "utter_greet",
        "mood_unhappy",
        "utter_cheer_up",
        "deny",
        "utter_greet",
        "affirm",
        "utter_happy",
    ) in paths
    # The cycle through 'greeted' is followed a bounded number of times.
    assert max(len(p) for p in paths) <= 4 + 4 * 2 + 2
    assert all(
        p[0] == "greet" for p in paths
    )  # only stories without a start checkpoint start paths


def test_unreached_checkpoint_is_reported(tmp_path: Path, caplog) -> None:
    (tmp_path / "s.yml").write_text(
        "stories:\n- story: orphan\n  steps:\n  - checkpoint: nowhere\n  - intent: greet\n  - action: utter_greet\n"
    )
    stories, _ = read_stories(tmp_path / "s.yml")
    assert resolve(stories) == []
    assert "checkpoint 'nowhere'" in caplog.text
