"""CLINC150 (``data_full.json``): in-scope accuracy and out-of-scope recall.

    python -m training.benchmarks.clinc150 [--seed 42] [--epochs N] [--validation]
        [--set NAME=VALUE ...]

"oos-train" setting, as in Larson et al. 2019: the 100 out-of-scope training queries are a 151st
intent. A query counts as out of scope when that intent wins, or, with a fallback threshold, when
the top confidence is below it (``nlu_fallback``). Three lines: no threshold; Rasa's default
FallbackClassifier threshold 0.3; and two thresholds chosen on the validation split (reported on
test): the one that maximises in-scope accuracy plus out-of-scope recall (both rates weigh the
same), and the one that maximises accuracy over all validation queries with out-of-scope as a
151st class (3,000 in-scope to 100 out-of-scope queries: in-scope accuracy weighs 30 times more).

``--validation`` never reads the test split: the same four lines, scored on validation (settings
are compared there). ``--set`` sets a ``BiLSTMCRF`` setting (the value is read as JSON).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from chatbot.nlu import NLUModel
from chatbot.project.training_data import NLUData, NLUExample
from training.benchmarks._nlu_common import (
    data_dir,
    emit,
    machine_load,
    parse_times_ms,
    pipeline,
    round_scores,
    setting,
    setup,
    timed,
)
from training.nlu import train_nlu

OOS = "oos"
DEFAULT_THRESHOLD = 0.3


def scores(
    intents: list[str], confidences: np.ndarray, predicted: list[str], threshold: float
) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope recall) at a threshold."""
    says_oos = np.array([p == OOS for p in predicted]) | (confidences < threshold)
    gold_oos = np.array([i == OOS for i in intents])
    correct = np.array([p == i for p, i in zip(predicted, intents, strict=True)])
    in_scope = float((correct & ~says_oos)[~gold_oos].mean())
    recall = float(says_oos[gold_oos].mean())
    return in_scope, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=0, help="0: the model's default")
    parser.add_argument("--validation", action="store_true", help="score validation only")
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="a BiLSTMCRF setting NAME=VALUE"
    )
    args = parser.parse_args()
    setup()
    data = json.loads((data_dir() / "clinc150" / "data_full.json").read_text())

    def examples(*splits: str) -> list[NLUExample]:
        return [NLUExample(text, intent) for s in splits for text, intent in data[s]]

    train = examples("train", "oos_train")
    params: dict[str, Any] = {"epochs": args.epochs} if args.epochs else {}
    params.update(args.set)
    with timed() as took:
        model = train_nlu(NLUData(examples=train), pipeline(**params), seed=args.seed)

    val_examples = examples("val", "oos_val")
    test_examples = val_examples if args.validation else examples("test", "oos_test")
    timing = parse_times_ms(model, [e.text for e in test_examples])
    # An ensemble's networks are also scored one by one: the same seeds' single models.
    members = model.members() if model.settings.ensemble_size > 1 else []
    for member, scored in enumerate([model, *members], start=-1):
        for result in _report(scored, val_examples, test_examples, args.validation):
            extra = {"member": member, "seed": args.seed + member} if member >= 0 else {}
            emit(
                round_scores(
                    {
                        "name": "clinc150",
                        **result,
                        "settings": params,
                        "train_examples": len(train),
                        **took(),
                        **timing,
                        "seed": args.seed,
                        "load_avg": machine_load(),
                        **extra,
                    }
                )
            )


def _report(
    model: NLUModel,
    val_examples: list[NLUExample],
    test_examples: list[NLUExample],
    validation: bool,
) -> list[dict[str, object]]:
    """In-scope accuracy and out-of-scope recall on test (val with ``validation``) without a
    threshold, at the default one and at the two chosen on val."""

    def predict(split: list[NLUExample]) -> tuple[list[str], np.ndarray, list[str]]:
        results = [model.parse(e.text) for e in split]
        return (
            [e.intent for e in split],
            np.array([r["intent"]["confidence"] for r in results]),
            [str(r["intent"]["name"]) for r in results],
        )

    val = predict(val_examples)
    candidates = np.round(np.arange(0.0, 1.0, 0.01), 2)
    balanced = float(max(candidates, key=lambda t: sum(scores(*val, t))))
    val_oos = sum(i == OOS for i in val[0]) / len(val[0])

    def accuracy(threshold: float) -> float:  # all queries, out-of-scope as one more class
        in_scope, recall = scores(*val, threshold)
        return (1 - val_oos) * in_scope + val_oos * recall

    accurate = float(max(candidates, key=accuracy))
    test = val if validation else predict(test_examples)
    results: list[dict[str, object]] = []
    for label, threshold in (
        ("no threshold", 0.0),
        ("default threshold", DEFAULT_THRESHOLD),
        ("threshold maximising val in-scope accuracy + oos recall", balanced),
        ("threshold maximising val accuracy (151 classes)", accurate),
    ):
        in_scope, recall = scores(*test, threshold)
        val_in_scope, val_recall = scores(*val, threshold)
        results.append(
            {
                "split": "val" if validation else "test",
                "setting": f"oos-train, {label}",
                "fallback_threshold": threshold,
                "in_scope_accuracy": in_scope,
                "oos_recall": recall,
                "val_in_scope_accuracy": val_in_scope,
                "val_oos_recall": val_recall,
            }
        )
    return results


if __name__ == "__main__":
    main()
