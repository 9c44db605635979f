"""HWU64 (NLU-Benchmark) 10-fold cross-validation: intent F1 and entity F1.

    python -m training.benchmarks.hwu64 [--folds K | --fold K] [--seed 42] [--validation]
        [--set NAME=VALUE ...] [--predictions FILE]

Fold k tests on ``KFold_k/testset`` and trains on the other nine folds' test sets, as in Liu et al.
2019. Intent F1 is micro-averaged (equal to accuracy: every utterance gets one intent); entity F1
is micro-averaged over exact (type, span) matches; ``entity_f1_hermit_scoring`` is the same
predictions scored as HERMIT's evaluation scripts score them (``token_overlap_scores``: a
predicted entity of the right type sharing a word with the gold one counts), the figure its
published 84.74 is. ``--folds K`` runs the first K folds only,
``--fold K`` fold K alone. One line per fold, then one with the means over the folds run.

``--validation`` never reads the test fold: it holds out a tenth of the fold's training examples
(the same tenth whatever ``--seed``), trains on the rest and scores on the held-out tenth; settings
are compared there. ``--set hidden=256`` sets a ``BiLSTMCRF`` setting (the value is read as JSON,
else kept as a string). ``--predictions FILE`` writes one JSON line per
scored example (text, gold and predicted entities, intents) for error analysis
(``training.nlu.metrics.span_errors`` counts the kinds of error).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
from pathlib import Path

from chatbot.nlu import NLUModel
from chatbot.nlu.types import ParseResult
from chatbot.project.training_data import EntityAnnotation, NLUData, NLUExample
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
from training.nlu.metrics import (
    Report,
    classification_report,
    span_errors,
    span_scores,
    token_overlap_scores,
)

FOLDS = 10
Span = tuple[str, int, int]  # entity type, start, end
VALIDATION_SHARE = 0.1
VALIDATION_SEED = 42  # the held-out tenth stays the same whatever --seed trains with
_ANNOTATION = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]+?)\s*\]")


def annotated(intent: str, marked: str) -> NLUExample:
    """``wake me at [time : nine am]`` -> text and entity spans."""
    text, entities, last = "", [], 0
    for m in _ANNOTATION.finditer(marked):
        text += marked[last : m.start()]
        start = len(text)
        text += m.group(2)
        entities.append(EntityAnnotation(start, len(text), m.group(2), m.group(1).strip()))
        last = m.end()
    text += marked[last:]
    return NLUExample(" ".join(text.split()) if not entities else text, intent, tuple(entities))


def load_fold(folder: Path) -> list[NLUExample]:
    examples = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                intent = f"{row['scenario']}_{row['intent']}"
                examples.append(annotated(intent, row["answer_annotation"]))
    return [e for e in examples if e.text.strip()]


def held_out(examples: list[NLUExample]) -> tuple[list[NLUExample], list[NLUExample]]:
    """(train, validation): a seeded tenth of ``examples`` held out for choosing settings."""
    order = random.Random(VALIDATION_SEED).sample(range(len(examples)), len(examples))
    cut = round(VALIDATION_SHARE * len(examples))
    return [examples[i] for i in sorted(order[cut:])], [examples[i] for i in sorted(order[:cut])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=FOLDS, help="run the first K of 10 folds")
    parser.add_argument("--fold", type=int, help="run fold K (1-10) alone")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--validation", action="store_true", help="score on a held-out tenth of the training data"
    )
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="a BiLSTMCRF setting NAME=VALUE"
    )
    parser.add_argument("--predictions", type=Path, help="write per-example predictions (JSONL)")
    args = parser.parse_args()
    setup()
    root = data_dir() / "hwu64"
    folds = [load_fold(root / f"KFold_{k}" / "testset") for k in range(1, FOLDS + 1)]
    params = dict(args.set)
    run = [args.fold - 1] if args.fold else list(range(min(args.folds, FOLDS)))
    intent_f1, entity_f1, hermit_f1, train_s = [], [], [], []
    if args.predictions:
        args.predictions.write_text("")
    for k in run:
        train = [e for j, fold in enumerate(folds) if j != k for e in fold]
        test = folds[k]
        if args.validation:
            train, test = held_out(train)
        with timed() as took:
            model = train_nlu(NLUData(examples=train), pipeline(**params), seed=args.seed)
        results, report, gold, found = _predict(model, test)
        entities = span_scores(gold, found)
        # HERMIT's own scoring (a shared word of the same type), to compare like with like.
        hermit = token_overlap_scores([e.text for e in test], gold, found)
        errors = span_errors(gold, found)
        if args.predictions:
            with args.predictions.open("a", encoding="utf-8") as handle:
                for e, r, g, f in zip(test, results, gold, found, strict=True):
                    row = {
                        "fold": k + 1,
                        "text": e.text,
                        "intent": e.intent,
                        "predicted_intent": r["intent"]["name"],
                        "gold": sorted(g),
                        "predicted": sorted(f),
                    }
                    handle.write(json.dumps(row) + "\n")
        intent_f1.append(report["micro avg"]["f1-score"])  # type: ignore[index]
        entity_f1.append(entities["f1"])
        hermit_f1.append(hermit["f1"])
        train_s.append(took()["train_s"])
        emit(
            round_scores(
                {
                    "name": "hwu64",
                    "split": f"fold {k + 1}" + (" validation" if args.validation else ""),
                    "examples": len(test),
                    "train_examples": len(train),
                    "intent_f1": intent_f1[-1],
                    "intent_macro_f1": report["macro avg"]["f1-score"],  # type: ignore[index]
                    "entity_f1": entities["f1"],
                    "entity_precision": entities["precision"],
                    "entity_recall": entities["recall"],
                    "entity_f1_hermit_scoring": hermit["f1"],
                    "entity_errors": errors,
                    "settings": params,
                    **took(),
                    **parse_times_ms(model, [e.text for e in test]),
                    "load_avg": machine_load(),
                }
            )
        )
        # An ensemble's networks are also scored one by one: the same seeds' single models.
        members = model.members() if model.settings.ensemble_size > 1 else []
        for i, member in enumerate(members):
            split = f"fold {k + 1}" + (" validation" if args.validation else "")
            scores = _scores(member, test)
            emit(
                round_scores(
                    {"name": "hwu64", "split": split, "member": i, "seed": args.seed + i, **scores}
                )
            )
    emit(
        round_scores(
            {
                "name": "hwu64",
                "split": f"mean of {len(intent_f1)} folds",
                "intent_f1": statistics.mean(intent_f1),
                "entity_f1": statistics.mean(entity_f1),
                "entity_f1_hermit_scoring": statistics.mean(hermit_f1),
                "train_s": round(statistics.mean(train_s), 1),
                "seed": args.seed,
            }
        )
    )


def _predict(
    model: NLUModel, test: list[NLUExample]
) -> tuple[list[ParseResult], Report, list[set[Span]], list[set[Span]]]:
    """``model``'s parses of ``test``, their intent report, and the gold and found entity spans."""
    results = [model.parse(e.text) for e in test]
    report = classification_report(
        [e.intent for e in test], [str(r["intent"]["name"]) for r in results]
    )
    gold = [{(a.entity, a.start, a.end) for a in e.entities} for e in test]
    found = [{(x["entity"], x["start"], x["end"]) for x in r["entities"]} for r in results]
    return results, report, gold, found


def _scores(model: NLUModel, test: list[NLUExample]) -> dict[str, object]:
    """Intent F1 (micro), exact-span entity F1 and HERMIT's entity F1 of ``model`` on ``test``."""
    _, report, gold, found = _predict(model, test)
    return {
        "intent_f1": report["micro avg"]["f1-score"],  # type: ignore[index]
        "entity_f1": span_scores(gold, found)["f1"],
        "entity_f1_hermit_scoring": token_overlap_scores([e.text for e in test], gold, found)["f1"],
    }


if __name__ == "__main__":
    main()
