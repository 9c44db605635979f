from __future__ import annotations

import pytest

from training.nlu.metrics import (
    bio_chunks,
    classification_report,
    confusion_matrix,
    span_errors,
    span_scores,
    token_overlap_scores,
)


def test_classification_report_matches_scikit_learns_numbers() -> None:
    # sklearn.metrics.classification_report(y_true, y_pred, output_dict=True) for these lists
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    report = classification_report(y_true, y_pred)
    assert report["a"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1-score": 0.8,
        "support": 3,
    }
    assert report["b"] == {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2}
    assert report["c"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1-score": pytest.approx(2 / 3),
        "support": 1,
    }
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro avg"]["f1-score"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["macro avg"]["precision"] == pytest.approx(2 / 3)
    assert report["weighted avg"]["f1-score"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3) / 6)
    assert report["weighted avg"]["support"] == 6
    assert report["micro avg"]["f1-score"] == pytest.approx(report["accuracy"])


def test_excluded_labels_have_no_row_and_stay_out_of_the_averages() -> None:
    y_true = ["no_entity", "city", "city", "no_entity"]
    y_pred = ["no_entity", "city", "no_entity", "city"]
    report = classification_report(y_true, y_pred, exclude=("no_entity",))
    assert "no_entity" not in report
    assert report["city"] == {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2}
    assert report["micro avg"]["f1-score"] == 0.5
    assert report["accuracy"] == 0.5  # over every token


def test_undefined_scores_are_zero() -> None:
    report = classification_report(["a", "a"], ["b", "b"])
    assert report["b"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    assert report["accuracy"] == 0.0


def test_confusion_matrix_counts_true_by_predicted() -> None:
    matrix = confusion_matrix(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    assert matrix.tolist() == [[1, 1], [0, 1]]


@pytest.mark.parametrize(
    ("tags", "chunks"),
    [
        (["B-a", "I-a", "O", "B-b"], {("a", 0, 2), ("b", 3, 4)}),
        (["I-a", "I-a", "O"], {("a", 0, 2)}),  # I- after O starts a chunk
        (["B-a", "I-b", "I-b"], {("a", 0, 1), ("b", 1, 3)}),  # a type change starts one too
        (["B-a", "B-a"], {("a", 0, 1), ("a", 1, 2)}),
        (["O", "O"], set()),
    ],
)
def test_bio_chunks_read_tags_as_conlleval_does(tags: list[str], chunks: set) -> None:
    assert bio_chunks(tags) == chunks


def test_span_scores_are_micro_averaged_exact_matches() -> None:
    gold = [{("a", 0, 2)}, {("b", 1, 2), ("a", 3, 4)}]
    found = [{("a", 0, 2)}, {("b", 1, 3)}]
    scores = span_scores(gold, found)
    assert scores["precision"] == 0.5
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["support"] == 3


def test_token_overlap_scores_count_a_shared_word_of_the_same_type_as_found() -> None:
    """HERMIT's HWU64 scoring: "next week" found for the gold "the next week" is right, as is
    a predicted entity sharing a word with a gold one elsewhere in the utterance; another type,
    or no shared word, is not."""
    texts = ["remind me the next week", "play jazz by miles davis", "wake me at seven"]
    gold = [
        {("date", 10, 23)},  # the next week
        {("genre", 5, 9), ("artist", 13, 24)},  # jazz, miles davis
        {("time", 11, 16)},  # seven
    ]
    found = [
        {("date", 14, 23)},  # next week: shares "next" and "week"
        {("genre", 5, 9), ("person", 13, 24), ("artist", 0, 4)},  # wrong type; no shared word
        set(),
    ]
    scores = token_overlap_scores(texts, gold, found)
    # 2 of 4 gold entities found; 2 predicted entities match no gold entity of their type.
    assert scores["recall"] == 0.5
    assert scores["precision"] == 0.5
    assert scores["f1"] == 0.5
    assert scores["support"] == 4
    assert span_scores(gold, found)["f1"] == 0.25  # exact spans: 1 of 4 gold, 1 of 4 predicted


@pytest.mark.parametrize(
    ("gold", "found", "kind"),
    [
        ({("date", 5, 10)}, {("date", 5, 10)}, "exact"),
        ({("date", 5, 10)}, {("time", 5, 10)}, "type"),
        ({("date", 5, 10)}, {("date", 0, 10)}, "boundary"),
        ({("date", 5, 10)}, {("time", 8, 14)}, "boundary_and_type"),
        ({("date", 5, 10)}, {("date", 10, 14)}, None),  # touching is not overlapping
    ],
)
def test_span_errors_name_what_became_of_a_span(gold: set, found: set, kind: str | None) -> None:
    counts = span_errors([gold], [found])
    if kind is None:
        assert (counts["missed"], counts["spurious"]) == (1, 1)
    else:
        assert counts[kind] == 1
        assert sum(counts.values()) == 1


def test_span_errors_pair_each_span_once_and_prefer_a_type_error_to_a_boundary_error() -> None:
    gold = [{("a", 0, 4), ("b", 5, 9)}, set()]
    found = [{("b", 0, 4), ("a", 0, 2), ("a", 6, 9)}, {("c", 1, 2)}]
    counts = span_errors(gold, found)
    assert counts == {
        "exact": 0,
        "type": 1,  # a 0-4 found as b 0-4, before the overlapping a 0-2 could be its boundary error
        "boundary": 0,
        "boundary_and_type": 1,  # b 5-9 found as a 6-9
        "missed": 0,
        "spurious": 2,  # a 0-2, left unpaired, and c 1-2
    }
