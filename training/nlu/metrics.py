"""Classification reports (scikit-learn's dict format, in numpy) and span scores (conlleval)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Sequence

import numpy as np

Report = dict[str, object]


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F1, 0.0 where undefined (scikit-learn's zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        denominator = precision + recall
        f1 = np.where(
            denominator > 0, 2 * precision * recall / np.where(denominator > 0, denominator, 1), 0.0
        )
    return precision, recall, f1


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], *, exclude: Collection[str] = ()
) -> Report:
    """Per-label precision/recall/f1-score/support plus accuracy, macro, weighted and micro avg.

    The format of ``sklearn.metrics.classification_report(..., output_dict=True)``. Labels in
    ``exclude`` (``no_entity`` for entities) get no row and stay out of the averages, as with
    scikit-learn's ``labels=``; ``accuracy`` still counts every sample.
    """
    assert len(y_true) == len(y_pred), f"{len(y_true)} targets, {len(y_pred)} predictions"
    labels = sorted((set(y_true) | set(y_pred)) - set(exclude))
    index = {label: i for i, label in enumerate(labels)}
    tp = np.zeros(len(labels))
    fp = np.zeros(len(labels))
    fn = np.zeros(len(labels))
    for t, p in zip(y_true, y_pred, strict=True):
        if t == p:
            if t in index:
                tp[index[t]] += 1
            continue
        if p in index:
            fp[index[p]] += 1
        if t in index:
            fn[index[t]] += 1
    support = tp + fn
    precision, recall, f1 = _prf(tp, fp, fn)
    report: Report = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1-score": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    total = int(support.sum())
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    report["accuracy"] = correct / len(y_true) if len(y_true) else 0.0
    weights = support / total if total else np.zeros(len(labels))
    report["macro avg"] = _avg(
        [float(x.mean()) if len(labels) else 0.0 for x in (precision, recall, f1)], total
    )
    report["weighted avg"] = _avg(
        [float((x * weights).sum()) for x in (precision, recall, f1)], total
    )
    micro = _prf(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))
    report["micro avg"] = _avg([float(x[0]) for x in micro], total)
    return report


def _avg(values: list[float], support: int) -> dict[str, float | int]:
    precision, recall, f1 = values
    return {"precision": precision, "recall": recall, "f1-score": f1, "support": support}


def confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """Counts ``[true, predicted]`` over ``labels`` (pairs with other labels are left out)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            matrix[index[t], index[p]] += 1
    return matrix


def confused_with(
    y_true: Sequence[str], y_pred: Sequence[str], label: str, top: int = 2
) -> dict[str, int]:
    """The labels most often predicted instead of ``label`` (Rasa's ``confused_with``)."""
    wrong = Counter(p for t, p in zip(y_true, y_pred, strict=True) if t == label and p != label)
    return dict(wrong.most_common(top))


def span_scores(
    gold: Iterable[Collection[Hashable]], predicted: Iterable[Collection[Hashable]]
) -> dict[str, float | int]:
    """Micro precision/recall/F1 of exact span matches, one collection of spans per example."""
    tp = fp = fn = 0
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = set(g), set(p)
        tp += len(gs & ps)
        fp += len(ps - gs)
        fn += len(gs - ps)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def token_overlap_scores(
    texts: Sequence[str],
    gold: Iterable[Collection[tuple[str, int, int]]],
    predicted: Iterable[Collection[tuple[str, int, int]]],
) -> dict[str, float | int]:
    """Entity F1 as HERMIT's evaluation scores HWU64 (Vanzo et al. 2019; their
    ``data/nlu_benchmark`` scripts): a gold entity counts as found when a predicted entity of the
    same type in the same utterance shares a word with it (words compared as strings, wherever
    they are), and a predicted entity counts as right when it shares a word with a gold entity of
    its type. ``recall`` is the share of gold entities found; ``precision`` is theirs: found gold
    entities over found gold entities plus predicted entities matching none (their script calls
    the two "precision" and "recall" the other way round; F1 is the same either way).

    Looser than ``span_scores``: "next week" for the gold "the next week" is right here."""
    found = missed = unmatched = 0
    for text, g, p in zip(texts, gold, predicted, strict=True):
        gold_words = [(t, set(text[a:b].split())) for t, a, b in g]
        pred_words = [(t, set(text[a:b].split())) for t, a, b in p]
        hits = sum(_shares_a_word(e, pred_words) for e in gold_words)
        found += hits
        missed += len(gold_words) - hits
        unmatched += sum(not _shares_a_word(e, gold_words) for e in pred_words)
    recall = found / (found + missed) if found + missed else 0.0
    precision = found / (found + unmatched) if found + unmatched else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": found + missed}


def _shares_a_word(entity: tuple[str, set[str]], others: list[tuple[str, set[str]]]) -> bool:
    """Whether one of ``others`` has the entity's type and one of its words."""
    return any(t == entity[0] and not words.isdisjoint(entity[1]) for t, words in others)


SPAN_ERRORS = ("exact", "type", "boundary", "boundary_and_type", "missed", "spurious")


def span_errors(
    gold: Iterable[Collection[tuple[str, int, int]]],
    predicted: Iterable[Collection[tuple[str, int, int]]],
) -> dict[str, int]:
    """Counts of what became of each ``(type, start, end)`` span, one collection per example.

    ``exact``: found as it is. Of the rest, each gold span is paired with at most one predicted
    span that overlaps it, in this order: the same span with another type (``type``), an overlap of
    the same type with other ends (``boundary``), an overlap of another type
    (``boundary_and_type``). A gold span left unpaired is ``missed``; a predicted one, ``spurious``.
    Exact-match precision and recall count each pair as one false positive and one false negative.
    """
    counts = dict.fromkeys(SPAN_ERRORS, 0)
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = set(g), set(p)
        counts["exact"] += len(gs & ps)
        left_gold = sorted(gs - ps, key=lambda s: (s[1], s[2], s[0]))
        left_pred = sorted(ps - gs, key=lambda s: (s[1], s[2], s[0]))
        kinds = (
            ("type", lambda a, b: a[1:] == b[1:]),
            ("boundary", lambda a, b: a[0] == b[0] and a[1] < b[2] and b[1] < a[2]),
            ("boundary_and_type", lambda a, b: a[1] < b[2] and b[1] < a[2]),
        )
        for kind, fits in kinds:
            for a in list(left_gold):
                b = next((b for b in left_pred if fits(a, b)), None)
                if b is not None:
                    counts[kind] += 1
                    left_gold.remove(a)
                    left_pred.remove(b)
        counts["missed"] += len(left_gold)
        counts["spurious"] += len(left_pred)
    return counts


def bio_chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """conlleval's chunks ``(type, first, last_exclusive)`` of a BIO sequence.

    As conlleval reads it: a chunk starts at ``B-x``, or at ``I-x`` after ``O`` or after another
    type; it ends before ``O``, ``B-*`` or a different type.
    """
    chunks: set[tuple[str, int, int]] = set()
    start: int | None = None
    kind = ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and (prefix in ("O", "B") or label != kind):
            chunks.add((kind, start, i))
            start = None
        if prefix in ("B", "I") and start is None:
            start, kind = i, label
    return chunks
