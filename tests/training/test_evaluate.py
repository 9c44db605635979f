from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import yaml

from chatbot.project.stories import ActionStep
from chatbot.project.story_reader import read_stories
from chatbot.project.training_data import NLUExample
from tests.chatbot.nlu.toy import trained_toy_model
from tests.helpers import RULES_ONLY, dialogue_model, train_files
from training.evaluate import _misread, evaluate_stories, write_reports
from training.nlu.evaluate import ReportOptions, evaluate_nlu

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


RETRIEVAL_DOMAIN = """
intents: [greet, chitchat]
responses:
  utter_greet:
  - text: Hi!
  utter_chitchat/ask_name:
  - text: I am a bot.
  utter_chitchat/ask_weather:
  - text: Sunny.
"""
RETRIEVAL_RULES = """
rules:
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""
RETRIEVAL_TESTS = """
stories:
- story: the name
  steps:
  - user: what is your name?
    intent: chitchat/ask_name
  - action: utter_chitchat/ask_name
- story: the weather, wrongly — réservée
  steps:
  - user: what is your name?
    intent: chitchat/ask_name
  - action: utter_chitchat/ask_weather
"""


def test_a_retrieval_action_counts_as_the_response_it_sends(tmp_path: Path) -> None:
    """As Rasa's ``rasa test`` (Rasa's responseselectorbot): test stories name the response
    (``utter_chitchat/ask_name``), the policies predict the retrieval action (``utter_chitchat``),
    which counts as the response it would send for the message's retrieval intent."""
    model = train_files(
        tmp_path / "bot",
        {
            "domain.yml": RETRIEVAL_DOMAIN,
            "data/rules.yml": RETRIEVAL_RULES,
            "config.yml": RULES_ONLY,
        },
    )
    (tmp_path / "test_x.yml").write_text(RETRIEVAL_TESTS)
    stories, _ = read_stories(tmp_path / "test_x.yml", test=True)
    evaluation = evaluate_stories(model, stories)
    passed = {result.name: result.passed for result in evaluation.results}
    assert passed == {"the name": True, "the weather, wrongly — réservée": False}
    report = write_reports(evaluation, tmp_path / "out")
    assert report["utter_chitchat/ask_name"]["support"] == 1
    failed = (tmp_path / "out" / "failed_test_stories.yml").read_text()
    assert "- action: utter_chitchat/ask_weather  # predicted: utter_chitchat/ask_name" in failed
    assert '- story: "the weather, wrongly — réservée"' in failed  # as written, as Rasa's


E2E = """
stories:
- story: said bye, written as a greeting
  steps:
  - user: bye
    intent: greet
  - action: utter_greet
- story: hello
  steps:
  - user: hello
    intent: greet
  - action: utter_greet
"""


def test_end_to_end_a_misread_user_text_fails_its_story(tmp_path: Path) -> None:
    """Rasa's ``--e2e``: the NLU reads each user text; the actions still follow the story."""
    (tmp_path / "test_e2e.yml").write_text(E2E)
    stories, _ = read_stories(tmp_path / "test_e2e.yml", test=True)
    model = replace(dialogue_model("moodbot"), nlu=trained_toy_model())

    plain = evaluate_stories(model, stories)
    assert plain.conversation_accuracy == 1.0  # the story's own intents: every action right

    e2e = evaluate_stories(model, stories, end_to_end=True)
    assert [r.passed for r in e2e.results] == [False, True]
    assert e2e.action_accuracy == 1.0
    write_reports(e2e, tmp_path / "out")
    failed = (tmp_path / "out" / "failed_test_stories.yml").read_text()
    # Rasa's story writer: the intent with the comment, then the text as a block.
    assert "  - intent: greet  # predicted: goodbye: bye\n    user: |\n      bye\n" in failed
    assert "hello" not in failed
    assert yaml.safe_load(failed)["stories"][0]["story"] == "said bye, written as a greeting"


def test_end_to_end_compares_entities_and_values() -> None:
    model = replace(dialogue_model("moodbot"), nlu=trained_toy_model())
    text = "fly from Berlin to Oslo"
    parsed = model.nlu.parse(text)  # type: ignore[union-attr]
    event = {"event": "user", "text": text, "parse_data": dict(parsed)}
    assert _misread(model, event) is None
    wrong = [{**e, "value": "Paris"} if e["value"] == "Oslo" else e for e in parsed["entities"]]
    event["parse_data"] = {**parsed, "entities": wrong}
    # Rasa's comment: the intent, then the text with the entities found marked up.
    assert _misread(model, event) == (
        'book_flight: fly from [Berlin]{"entity": "city", "role": "from"} '
        'to [Oslo]{"entity": "city", "role": "to"}'
    )


def test_report_options_choose_the_files(tmp_path: Path) -> None:
    """Rasa's --successes, --no-errors and --no-plot, for the stories and the NLU."""
    (tmp_path / "test_x.yml").write_text(WRONG)
    stories, _ = read_stories(tmp_path / "test_x.yml", test=True)
    evaluation = evaluate_stories(dialogue_model("moodbot"), stories)

    write_reports(evaluation, tmp_path / "default")
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [
        "failed_test_stories.yml",
        "story_confusion_matrix.png",
        "story_report.json",
    ]
    assert (tmp_path / "default" / "story_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"

    chosen = ReportOptions(successes=True, errors=False, plots=False)
    write_reports(evaluation, tmp_path / "chosen", chosen)
    assert sorted(p.name for p in (tmp_path / "chosen").iterdir()) == [
        "story_report.json",
        "successful_test_stories.yml",
    ]
    passed = yaml.safe_load((tmp_path / "chosen" / "successful_test_stories.yml").read_text())
    assert [s["story"] for s in passed["stories"]] == ["fine"]

    nlu = trained_toy_model()
    examples = [NLUExample("hello", "greet"), NLUExample("bye", "greet")]  # the second is wrong
    summary = evaluate_nlu(nlu, examples, tmp_path / "nlu", chosen)
    files = sorted(summary["files"])  # type: ignore[call-overload]
    assert files == ["BiLSTMCRF_report.json", "intent_report.json", "intent_successes.json"]
    successes = json.loads((tmp_path / "nlu" / "intent_successes.json").read_text())
    assert [s["text"] for s in successes] == ["hello"]


MULTILINE = """
stories:
- story: two lines
  steps:
  - user: |
      fly from [Berlin]{"entity": "city", "role": "from"}
      to [Oslo]{"entity": "city", "role": "to"} today
    intent: greet
  - action: utter_greet
  - bot: Anything else?
"""


def test_failed_stories_read_back_as_they_were_written(tmp_path: Path) -> None:
    """Rasa's story writer: a user text of several lines stays a block with its entity markup
    (the comment goes on the intent's line, outside it), a bot text stays a `bot:` step."""
    (tmp_path / "test_lines.yml").write_text(MULTILINE)
    stories, _ = read_stories(tmp_path / "test_lines.yml", test=True)
    model = replace(dialogue_model("moodbot"), nlu=trained_toy_model())
    write_reports(evaluate_stories(model, stories, end_to_end=True), tmp_path / "out")
    failed = (tmp_path / "out" / "failed_test_stories.yml").read_text()
    assert "  - bot: Anything else?  # predicted: " in failed
    assert "  - intent: greet  # predicted: book_flight: fly from [Berlin]{" in failed
    (again,), _ = read_stories(tmp_path / "out" / "failed_test_stories.yml", test=True)
    assert again.steps[0].text == stories[0].steps[0].text
    assert again.steps[0].entities == stories[0].steps[0].entities
    bot = again.steps[2]
    assert isinstance(bot, ActionStep) and (bot.name, bot.text) == (None, "Anything else?")
