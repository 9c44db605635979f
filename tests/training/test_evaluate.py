from __future__ import annotations

import json
from pathlib import Path

import yaml

from chatbot.project.story_reader import read_stories
from tests.helpers import dialogue_model
from training.evaluate import evaluate_stories, write_reports

WRONG = """
stories:
- story: greeted wrongly
  steps:
  - user: hello
    intent: greet
  - action: utter_goodbye
- story: fine
  steps:
  - intent: goodbye
  - action: utter_goodbye
"""


def test_reports_have_rasa_keys_and_failed_stories_are_annotated(tmp_path: Path) -> None:
    (tmp_path / "test_x.yml").write_text(WRONG)
    stories, _ = read_stories(tmp_path / "test_x.yml", test=True)
    evaluation = evaluate_stories(dialogue_model("moodbot"), stories)
    report = write_reports(evaluation, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "story_report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    for key in (
        "accuracy",
        "macro avg",
        "weighted avg",
        "micro avg",
        "utter_goodbye",
        "utter_greet",
    ):
        assert key in saved
    assert set(saved["utter_greet"]) == {"precision", "recall", "f1-score", "support"}
    assert saved["conversation_accuracy"] == {
        "accuracy": 0.5,
        "correct": 1,
        "with_warnings": 0,
        "total": 2,
    }
    failed = (tmp_path / "out" / "failed_test_stories.yml").read_text()
    assert "- action: utter_goodbye  # predicted: utter_greet" in failed
    assert "fine" not in failed
    parsed = yaml.safe_load(failed)
    assert parsed["stories"][0]["story"] == "greeted wrongly"
