from __future__ import annotations

import logging
from pathlib import Path

import pytest

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


def _loop_stories(tmp_path: Path, k: int) -> list:
    """A start story, then ``k`` stories that may follow each other in any order, for ever
    (a checkpoint loop without an exit: "the user may ask any of these, in any order")."""
    text = "stories:\n- story: start\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    text += "  - checkpoint: loop\n"
    for i in range(k):
        text += f"- story: ask {i}\n  steps:\n  - checkpoint: loop\n  - intent: ask_{i}\n"
        text += f"  - action: utter_{i}\n  - checkpoint: loop\n"
    (tmp_path / "s.yml").write_text(text)
    stories, _ = read_stories(tmp_path / "s.yml")
    return stories


def test_a_loop_without_an_exit_gives_paths_that_end_in_it(tmp_path: Path) -> None:
    """As Rasa keeps a tracker that ends at a checkpoint: every story of the loop is learned
    (before, no path reached a story without exits, and the loop's stories were dropped)."""
    paths = {tuple(names(f)) for f in resolve(_loop_stories(tmp_path, 2))}
    assert paths and all(p[:2] == ("greet", "utter_greet") for p in paths)
    assert ("greet", "utter_greet", "ask_0", "utter_0", "ask_1", "utter_1") in {
        p[:6] for p in paths
    }
    # Each story of the loop at most twice a path.
    assert max(len(p) for p in paths) == 2 + 2 * 2 * 2


def test_too_many_paths_to_list_are_sampled_with_a_seed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Seven stories in a loop have (14)!/2^7 orders: listing them took minutes and gave nothing.
    A seeded sample of paths is taken instead, holding every story of the loop."""
    stories = _loop_stories(tmp_path, 7)
    with caplog.at_level(logging.INFO, logger="training.story_graph"):
        paths = resolve(stories, max_visits=20_000)
    assert "chosen at random (seed 42)" in caplog.text
    assert 1 < len(paths) <= 50 * 8 + 100
    learned = {name for p in paths for name in names(p)}
    assert {f"ask_{i}" for i in range(7)} <= learned
    assert [names(p) for p in resolve(stories, max_visits=20_000)] == [names(p) for p in paths]
    # A graph with few paths is still listed in full, not sampled.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="training.story_graph"):
        resolve(_loop_stories(tmp_path, 2))
    assert "chosen at random" not in caplog.text
