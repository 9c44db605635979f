"""``chatbot test nlu``: reports on a test set, an 80/20 split, or N-fold cross-validation.

Files written to ``out_dir`` (Rasa's names and formats):

- ``intent_report.json``: scikit-learn's classification report, each intent with ``confused_with``
- ``intent_errors.json``: the misclassified messages with their predictions
- ``intent_confusion_matrix.png``, ``intent_histogram.png`` (confidence of correct vs wrong)
- ``<extractor>_report.json`` and ``<extractor>_errors.json`` per entity extractor: a report over
  token labels (``city``, ``city role=from``), ``no_entity`` left out of the rows and averages
- ``response_selection_report.json``, ``response_selection_errors.json`` with retrieval intents
- ``cross_validation.json`` (cross-validation only): every fold's scores, their mean and std
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatbot.errors import ConfigError, TrainingError
from chatbot.nlu.model import EXTRACTOR, NLUModel
from chatbot.nlu.tokenizer import Token, tokenize
from chatbot.nlu.types import ParseResult
from chatbot.project.config import ComponentConfig
from chatbot.project.stories import Story, UserStep
from chatbot.project.training_data import NLUData, NLUExample
from training.nlu.metrics import (
    Report,
    classification_report,
    confused_with,
    confusion_matrix,
    span_scores,
)
from training.nlu.plots import confidence_histogram_png, confusion_matrix_png

logger = logging.getLogger(__name__)

NO_ENTITY = "no_entity"
REGEX_EXTRACTOR = "RegexEntityExtractor"


@dataclass(frozen=True)
class ReportOptions:
    """What the reports include (Rasa's ``--successes``, ``--no-errors``, ``--no-plot``)."""

    successes: bool = False  # intent_successes.json: the examples read right
    errors: bool = True  # intent_errors.json and each extractor's errors
    plots: bool = True  # the confusion matrix and the confidence histogram


DEFAULT_REPORTS = ReportOptions()


@dataclass
class Scores:
    """Everything the reports hold, before anything is written."""

    intent_report: Report
    intent_errors: list[dict[str, object]]
    intent_targets: list[str]
    intent_predictions: list[str]
    confidences: list[float]
    intent_successes: list[dict[str, object]] = field(default_factory=list)
    entity_reports: dict[str, Report] = field(default_factory=dict)
    entity_spans: dict[str, dict[str, float | int]] = field(default_factory=dict)
    entity_errors: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    response_report: Report | None = None
    response_errors: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        r = self.intent_report
        result: dict[str, object] = {
            "examples": len(self.intent_targets),
            "intent": {
                "accuracy": r["accuracy"],
                "macro_f1": r["macro avg"]["f1-score"],  # type: ignore[index]
                "weighted_f1": r["weighted avg"]["f1-score"],  # type: ignore[index]
            },
            "entities": {
                name: {
                    "token_f1": report["micro avg"]["f1-score"],  # type: ignore[index]
                    "span_precision": self.entity_spans[name]["precision"],
                    "span_recall": self.entity_spans[name]["recall"],
                    "span_f1": self.entity_spans[name]["f1"],
                    "support": self.entity_spans[name]["support"],
                }
                for name, report in self.entity_reports.items()
            },
        }
        if self.response_report is not None:
            result["response_selection"] = {
                "accuracy": self.response_report["accuracy"],
                "weighted_f1": self.response_report["weighted avg"]["f1-score"],  # type: ignore[index]
            }
        return result


def predict(model: NLUModel, examples: Sequence[NLUExample]) -> list[ParseResult]:
    return [model.parse(e.text) for e in examples]


def extractors_of(model: NLUModel, predictions: Sequence[ParseResult] = ()) -> list[str]:
    """Our model's entity extractors, then any other that named itself in ``predictions`` (a
    pipeline's custom component), as Rasa reports each extractor."""
    names = [EXTRACTOR] if model.has_tagger else []
    names += [REGEX_EXTRACTOR] if model.settings.regex_entities else []
    others = {
        e.get("extractor")
        for p in predictions
        for e in p.get("entities") or ()
        if isinstance(e, dict)
    }
    return names + sorted(n for n in others if isinstance(n, str) and n not in names)


def evaluate_nlu(
    model: NLUModel,
    examples: Sequence[NLUExample],
    out_dir: Path,
    options: ReportOptions = DEFAULT_REPORTS,
) -> dict[str, object]:
    """Parse ``examples``, write the reports to ``out_dir`` and return a summary of the scores::

    {"examples": n, "intent": {"accuracy", "macro_f1", "weighted_f1"},
     "entities": {extractor: {"token_f1", "span_precision", "span_recall", "span_f1", "support"}},
     "response_selection": {"accuracy", "weighted_f1"},   # with retrieval intents only
     "files": [names written]}
    """
    if not examples:
        raise TrainingError("no NLU test examples to evaluate")
    predictions = predict(model, examples)
    scores = score(examples, predictions, extractors_of(model, predictions))
    return write_reports(scores, Path(out_dir), options)


def score(
    examples: Sequence[NLUExample], predictions: Sequence[ParseResult], extractors: Sequence[str]
) -> Scores:
    targets = [e.base_intent for e in examples]
    predicted = [str(p["intent"]["name"]) for p in predictions]
    confidences = [float(p["intent"]["confidence"]) for p in predictions]
    report = classification_report(targets, predicted)
    for label in sorted(set(targets) | set(predicted)):
        report[label]["confused_with"] = confused_with(targets, predicted, label)  # type: ignore[index]
    errors: list[dict[str, object]] = [
        {"text": e.text, "intent": t, "intent_prediction": dict(p["intent"])}
        for e, t, p in zip(examples, targets, predictions, strict=True)
        if t != p["intent"]["name"]
    ]
    successes: list[dict[str, object]] = [
        {"text": e.text, "intent": t, "intent_prediction": dict(p["intent"])}
        for e, t, p in zip(examples, targets, predictions, strict=True)
        if t == p["intent"]["name"]
    ]
    scores = Scores(report, errors, targets, predicted, confidences, successes)
    for extractor in extractors:
        _score_entities(scores, examples, predictions, extractor)
    _score_responses(scores, examples, predictions)
    return scores


def _label(entity: str, role: object = None, group: object = None) -> str:
    label = entity
    if role:
        label += f" role={role}"
    if group:
        label += f" group={group}"
    return label


def _score_entities(
    scores: Scores,
    examples: Sequence[NLUExample],
    predictions: Sequence[ParseResult],
    extractor: str,
) -> None:
    y_true: list[str] = []
    y_pred: list[str] = []
    gold_spans, pred_spans = [], []
    errors: list[dict[str, object]] = []
    for example, prediction in zip(examples, predictions, strict=True):
        gold = [(a.start, a.end, _label(a.entity, a.role, a.group)) for a in example.entities]
        mine = [e for e in prediction["entities"] if e.get("extractor") == extractor]
        found = [
            (e["start"], e["end"], _label(e["entity"], e.get("role"), e.get("group")))
            for e in mine
            if isinstance(e.get("start"), int) and isinstance(e.get("end"), int)
        ]
        tokens = tokenize(example.text)
        y_true.extend(_token_labels(tokens, gold))
        y_pred.extend(_token_labels(tokens, found))
        gold_spans.append(set(gold))
        pred_spans.append(set(found))
        if set(gold) != set(found):
            errors.append(
                {
                    "text": example.text,
                    "entities": [{"start": s, "end": e, "entity": label} for s, e, label in gold],
                    "predicted_entities": [dict(e) for e in mine],
                }
            )
    scores.entity_reports[extractor] = classification_report(y_true, y_pred, exclude=(NO_ENTITY,))
    scores.entity_spans[extractor] = span_scores(gold_spans, pred_spans)
    scores.entity_errors[extractor] = errors


def _token_labels(tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]]) -> list[str]:
    labels = [NO_ENTITY] * len(tokens)
    for start, end, label in spans:
        for i, token in enumerate(tokens):
            if token.start < end and token.end > start and labels[i] == NO_ENTITY:
                labels[i] = label
    return labels


def _score_responses(
    scores: Scores, examples: Sequence[NLUExample], predictions: Sequence[ParseResult]
) -> None:
    targets, predicted = [], []
    for example, prediction in zip(examples, predictions, strict=True):
        if "/" not in example.intent:
            continue
        chosen = prediction.get("response_selector", {}).get(example.base_intent)
        response = chosen["response"] if isinstance(chosen, dict) else None
        key = str(response["intent_response_key"]) if response else "None"
        targets.append(example.intent)
        predicted.append(key)
        if key != example.intent:
            scores.response_errors.append(
                {
                    "text": example.text,
                    "intent_response_key_target": example.intent,
                    "intent_response_key_prediction": response,
                }
            )
    if targets:
        scores.response_report = classification_report(targets, predicted)


def write_reports(
    scores: Scores, out_dir: Path, options: ReportOptions = DEFAULT_REPORTS
) -> dict[str, object]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []

    def dump(name: str, data: object) -> None:
        (out_dir / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        files.append(name)

    dump("intent_report.json", scores.intent_report)
    if options.errors:
        dump("intent_errors.json", scores.intent_errors)
    if options.successes:
        dump("intent_successes.json", scores.intent_successes)
    if options.plots:
        labels = sorted(set(scores.intent_targets) | set(scores.intent_predictions))
        matrix = confusion_matrix(scores.intent_targets, scores.intent_predictions, labels)
        confusion_matrix_png(matrix, labels, out_dir / "intent_confusion_matrix.png")
        files.append("intent_confusion_matrix.png")
        pairs = zip(scores.intent_targets, scores.intent_predictions, strict=True)
        hits = [t == p for t, p in pairs]
        confidence_histogram_png(
            [c for c, h in zip(scores.confidences, hits, strict=True) if h],
            [c for c, h in zip(scores.confidences, hits, strict=True) if not h],
            out_dir / "intent_histogram.png",
        )
        files.append("intent_histogram.png")
    for extractor, report in scores.entity_reports.items():
        dump(f"{extractor}_report.json", report)
        if options.errors:
            dump(f"{extractor}_errors.json", scores.entity_errors[extractor])
    if scores.response_report is not None:
        dump("response_selection_report.json", scores.response_report)
        if options.errors:
            dump("response_selection_errors.json", scores.response_errors)
    summary = scores.summary()
    summary["files"] = files
    return summary


def stratified_folds(examples: Sequence[NLUExample], folds: int, seed: int) -> list[int]:
    """A fold number per example, each intent spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        by_intent.setdefault(example.intent, []).append(i)
    assignment = [0] * len(examples)
    position = 0
    for intent in sorted(by_intent):
        for i in rng.permutation(by_intent[intent]):
            assignment[int(i)] = position % folds
            position += 1
    return assignment


def cross_validate(
    data: NLUData,
    pipeline: Sequence[ComponentConfig],
    folds: int,
    out_dir: Path,
    seed: int = 42,
    options: ReportOptions = DEFAULT_REPORTS,
) -> dict[str, object]:
    """Train on all folds but one, test on that one, for each fold; report on all test folds.

    Writes the reports of ``evaluate_nlu`` over the pooled test predictions to ``out_dir``, and
    ``cross_validation.json`` with each fold's summary and the mean and standard deviation of the
    scores. Returns the content of ``cross_validation.json`` plus ``files``.
    """
    from training.nlu.trainer import train_nlu

    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    examples = [e for e in data.examples if e.text.strip()]
    if len(examples) < folds:
        raise TrainingError(f"{len(examples)} NLU examples cannot be split into {folds} folds")
    assignment = stratified_folds(examples, folds, seed)
    pooled_examples: list[NLUExample] = []
    pooled_predictions: list[ParseResult] = []
    fold_summaries = []
    extractors: list[str] = []
    for fold in range(folds):
        train = [e for e, f in zip(examples, assignment, strict=True) if f != fold]
        test = [e for e, f in zip(examples, assignment, strict=True) if f == fold]
        fold_data = NLUData(train, dict(data.synonyms), list(data.regexes), list(data.lookups))
        model = train_nlu(fold_data, pipeline, seed=seed, show_progress=False)
        predictions = predict(model, test)
        extractors = sorted(set(extractors) | set(extractors_of(model, predictions)))
        fold_summaries.append(score(test, predictions, extractors_of(model, predictions)).summary())
        pooled_examples.extend(test)
        pooled_predictions.extend(predictions)
        logger.info(
            "cross-validation fold %d/%d: %s", fold + 1, folds, fold_summaries[-1]["intent"]
        )
    out_dir = Path(out_dir)
    pooled = score(pooled_examples, pooled_predictions, extractors)
    summary = write_reports(pooled, out_dir, options)
    result: dict[str, object] = {
        "folds": folds,
        "seed": seed,
        "fold_summaries": fold_summaries,
        "intent": _mean_std([s["intent"] for s in fold_summaries]),  # type: ignore[misc]
        "entities": {
            name: _mean_std([s["entities"][name] for s in fold_summaries if name in s["entities"]])  # type: ignore[index, operator]
            for name in extractors
        },
        "pooled": {k: v for k, v in summary.items() if k != "files"},
    }
    (out_dir / "cross_validation.json").write_text(json.dumps(result, indent=2) + "\n")
    result["files"] = [*summary["files"], "cross_validation.json"]  # type: ignore[misc]
    return result


def _mean_std(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = rows[0].keys() if rows else ()
    return {
        k: {
            "mean": float(np.mean([r[k] for r in rows])),
            "std": float(np.std([r[k] for r in rows])),
        }
        for k in keys
    }


def split_examples(
    examples: Sequence[NLUExample], test_share: float, seed: int
) -> tuple[list[NLUExample], list[NLUExample]]:
    """(train, test): ``test_share`` of each intent's examples held out (seeded), at least one of
    every intent with two or more; an intent with one example stays in training. Examples keep
    their order."""
    if not 0 < test_share < 1:
        raise ConfigError(f"the test share must be between 0 and 1, got {test_share}")
    kept = [e for e in examples if e.text.strip()]
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[int]] = {}
    for i, example in enumerate(kept):
        by_intent.setdefault(example.intent, []).append(i)
    held: set[int] = set()
    for intent in sorted(by_intent):
        indices = by_intent[intent]
        if len(indices) < 2:  # one example: training needs it more than the report
            continue
        count = min(len(indices) - 1, max(1, round(len(indices) * test_share)))
        held.update(int(i) for i in rng.permutation(indices)[:count])
    if not held:
        raise TrainingError(
            "too few NLU examples to hold any out for testing (every intent needs two or more)"
        )
    return (
        [e for i, e in enumerate(kept) if i not in held],
        [e for i, e in enumerate(kept) if i in held],
    )


def split_evaluate(
    data: NLUData,
    pipeline: Sequence[ComponentConfig],
    out_dir: Path,
    *,
    test_share: float = 0.2,
    seed: int = 42,
    options: ReportOptions = DEFAULT_REPORTS,
) -> dict[str, object]:
    """Hold out ``test_share`` of the examples (each intent's share, at least one example of every
    intent with two or more), train on the rest with ``pipeline``, and write the reports of
    ``evaluate_nlu`` on the held-out part. Returns its summary plus ``train_examples``."""
    from training.nlu.trainer import train_nlu

    train, test = split_examples(data.examples, test_share, seed)
    train_data = NLUData(train, dict(data.synonyms), list(data.regexes), list(data.lookups))
    model = train_nlu(train_data, pipeline, seed=seed, show_progress=False)
    summary = evaluate_nlu(model, test, out_dir, options)
    summary["train_examples"] = len(train)
    return summary


def examples_of_stories(stories: Sequence[Story]) -> list[NLUExample]:
    """The user messages of (test) stories that have both a text and an intent, as NLU examples:
    what the NLU part of ``chatbot test`` scores. Payloads (``/intent``) are not texts."""
    return [
        NLUExample(step.text, step.intent, step.entities, step.origin)
        for story in stories
        for step in story.steps
        if isinstance(step, UserStep)
        and step.text
        and step.intent
        and not step.text.lstrip().startswith("/")
        # ``entities:`` listed beside a text have no offsets: such a step cannot be scored.
        and all(e.end > e.start for e in step.entities)
    ]
