"""Classification reports in scikit-learn's ``classification_report(output_dict=True)`` format,
which Rasa's report files use, written with plain Python."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def classification_report(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Per label precision/recall/f1-score/support, plus accuracy, micro, macro and weighted avg."""
    assert len(gold) == len(predicted), (len(gold), len(predicted))
    labels = sorted(set(gold) | set(predicted))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    support = Counter(gold)
    report: dict[str, Any] = {}
    for label in labels:
        precision, recall, f1 = _prf(tp[label], fp[label], fn[label])
        report[label] = {
            "precision": precision,
            "recall": recall,
            "f1-score": f1,
            "support": support[label],
        }
    total = len(gold)
    correct = sum(tp.values())
    report["accuracy"] = correct / total if total else 0.0
    micro = _prf(correct, total - correct, total - correct)
    report["micro avg"] = {
        "precision": micro[0],
        "recall": micro[1],
        "f1-score": micro[2],
        "support": total,
    }
    n = len(labels) or 1
    report["macro avg"] = {
        key: sum(report[lab][key] for lab in labels) / n
        for key in ("precision", "recall", "f1-score")
    } | {"support": total}
    report["weighted avg"] = {
        key: (sum(report[lab][key] * support[lab] for lab in labels) / total if total else 0.0)
        for key in ("precision", "recall", "f1-score")
    } | {"support": total}
    return report
