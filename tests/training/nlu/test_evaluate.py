from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from chatbot.errors import ConfigError, TrainingError
from chatbot.nlu import NLUModel
from chatbot.project.config import ComponentConfig
from chatbot.project.story_reader import read_stories
from chatbot.project.training_data import NLUData
from tests.chatbot.nlu.toy import example, toy_data
from training.nlu.evaluate import (
    cross_validate,
    evaluate_nlu,
    examples_of_stories,
    split_evaluate,
    stratified_folds,
)

AVERAGES = {"accuracy", "macro avg", "weighted avg", "micro avg"}
ROW = {"precision", "recall", "f1-score", "support"}
PNG = b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_rasas_reports(trained_toy: NLUModel, tmp_path: Path) -> None:
    examples = [
        *toy_data().examples,
        example("greet", "hi there"),
        example(
            "book_flight",
            'fly from [Hamburg]{"entity": "city", "role": "from"} to [Tokyo]{"entity": "city", "role": "to"}',
        ),
        example("goodbye", "hello"),  # a deliberate error
    ]
    summary = evaluate_nlu(trained_toy, examples, tmp_path)

    intent_report = json.loads((tmp_path / "intent_report.json").read_text())
    assert set(intent_report) == {*trained_toy.intents, *AVERAGES}
    assert set(intent_report["greet"]) == {*ROW, "confused_with"}
    assert intent_report["goodbye"]["support"] == 7
    errors = json.loads((tmp_path / "intent_errors.json").read_text())
    assert errors == [
        {
            "text": "hello",
            "intent": "goodbye",
            "intent_prediction": {
                "name": "greet",
                "confidence": errors[0]["intent_prediction"]["confidence"],
            },
        }
    ]
    entity_report = json.loads((tmp_path / "BiLSTMCRF_report.json").read_text())
    assert "city role=from" in entity_report and "no_entity" not in entity_report
    assert "size group=1" in entity_report
    assert set(entity_report["zipcode"]) == ROW
    assert set(entity_report) >= AVERAGES
    assert json.loads((tmp_path / "BiLSTMCRF_errors.json").read_text()) == []
    response_report = json.loads((tmp_path / "response_selection_report.json").read_text())
    assert {"faq/ask_name", "faq/ask_weather"} <= set(response_report)
    for image in ("intent_confusion_matrix.png", "intent_histogram.png"):
        assert (tmp_path / image).read_bytes().startswith(PNG)

    assert summary["examples"] == len(examples)
    assert summary["intent"]["accuracy"] == pytest.approx((len(examples) - 1) / len(examples))
    assert summary["entities"]["BiLSTMCRF"]["span_f1"] == 1.0
    assert summary["response_selection"]["accuracy"] == 1.0
    assert set(summary["files"]) == {p.name for p in tmp_path.iterdir()}


def test_evaluating_nothing_is_an_error(trained_toy: NLUModel, tmp_path: Path) -> None:
    with pytest.raises(TrainingError):
        evaluate_nlu(trained_toy, [], tmp_path)


def test_folds_are_stratified_and_seeded() -> None:
    examples = toy_data().examples
    folds = stratified_folds(examples, 3, seed=1)
    assert folds == stratified_folds(examples, 3, seed=1)
    for intent in {e.intent for e in examples}:
        counts = [
            sum(1 for e, f in zip(examples, folds, strict=True) if e.intent == intent and f == k)
            for k in range(3)
        ]
        assert max(counts) - min(counts) <= 1
    assert sorted(set(folds)) == [0, 1, 2]


def test_cross_validation_runs_and_reports(tmp_path: Path) -> None:
    pipeline = [ComponentConfig("BiLSTMCRF", {"epochs": 8, "hidden": 16, "word_dim": 16})]
    result = cross_validate(toy_data(), pipeline, 2, tmp_path, seed=5)
    assert result["folds"] == 2
    assert len(result["fold_summaries"]) == 2
    assert set(result["intent"]) == {"accuracy", "macro_f1", "weighted_f1"}
    assert set(result["intent"]["accuracy"]) == {"mean", "std"}
    assert "BiLSTMCRF" in result["entities"]
    assert result["pooled"]["examples"] == len(toy_data().examples)
    saved = json.loads((tmp_path / "cross_validation.json").read_text())
    assert saved["fold_summaries"] == result["fold_summaries"]
    for name in (
        "intent_report.json",
        "intent_errors.json",
        "intent_histogram.png",
        "BiLSTMCRF_report.json",
    ):
        assert (tmp_path / name).exists()


@pytest.mark.parametrize(("folds", "error"), [(1, ConfigError), (500, TrainingError)])
def test_cross_validation_checks_the_fold_count(tmp_path: Path, folds: int, error: type) -> None:
    with pytest.raises(error):
        cross_validate(toy_data(), [], folds, tmp_path)


def test_the_split_holds_out_a_share_of_each_intent(tmp_path: Path) -> None:
    data = toy_data()
    pipeline = [ComponentConfig("BiLSTMCRF", {"epochs": 8, "hidden": 16, "word_dim": 16})]
    summary = split_evaluate(data, pipeline, tmp_path, test_share=0.25, seed=3)
    report = json.loads((tmp_path / "intent_report.json").read_text())
    expected: Counter[str] = Counter()  # by intent (faq/ask_name apart), reported by base intent
    for intent, count in Counter(e.intent for e in data.examples).items():
        expected[intent.split("/")[0]] += min(count - 1, max(1, round(count * 0.25)))
    assert {k: v["support"] for k, v in report.items() if k not in AVERAGES} == expected
    assert summary["examples"] + summary["train_examples"] == len(data.examples)


def test_a_split_of_single_examples_is_an_error(tmp_path: Path) -> None:
    data = NLUData([example("greet", "hi"), example("goodbye", "bye")])
    with pytest.raises(TrainingError, match="two or more"):
        split_evaluate(data, [], tmp_path)


def test_the_user_texts_of_test_stories_are_nlu_examples(tmp_path: Path) -> None:
    file = tmp_path / "test_stories.yml"
    file.write_text(
        'version: "3.1"\n'
        "stories:\n"
        "- story: s\n"
        "  steps:\n"
        "  - user: |\n"
        "      fly to [Tokyo](city)\n"
        "    intent: book_flight\n"
        "  - action: utter_ok\n"
        "  - intent: greet\n"  # no text: nothing to parse
        "  - action: utter_ok\n"
        "  - user: /greet\n"  # a payload, not a text
        "    intent: greet\n"
        "  - action: utter_ok\n"
    )
    stories, _ = read_stories(file, test=True)
    examples = examples_of_stories(stories)
    assert [(e.text, e.intent) for e in examples] == [("fly to Tokyo", "book_flight")]
    (entity,) = examples[0].entities
    assert (entity.entity, entity.value, entity.start, entity.end) == ("city", "Tokyo", 7, 12)
