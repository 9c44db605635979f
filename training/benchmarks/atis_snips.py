"""ATIS and SNIPS (the slot-gated copies): intent accuracy and conlleval slot F1 on the test sets.

    python -m training.benchmarks.atis_snips [--datasets atis snips] [--seed 42] [--epochs N]
        [--validation] [--set NAME=VALUE ...]

Trained on ``train`` only. Slot F1 is conlleval's: exact chunks on the data's own whitespace
tokens, micro-averaged. ``--validation`` scores the ``valid`` split instead of ``test`` (settings
are compared there, never on test); ``--set count_vectors=[["word",1,2]]`` sets a ``BiLSTMCRF``
setting (the value is read as JSON, else kept as a string).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chatbot.project.training_data import NLUData, NLUExample
from training.benchmarks._nlu_common import (
    bio_example,
    data_dir,
    emit,
    machine_load,
    parse_times_ms,
    pipeline,
    predicted_bio,
    round_scores,
    setting,
    setup,
    timed,
)
from training.nlu import train_nlu
from training.nlu.metrics import bio_chunks, span_scores

PUBLISHED = "slot-gated 94.1/95.2 (ATIS) 97.0/88.8 (SNIPS); Stack-Propagation 96.9/95.9, 98.0/94.2"


def load(folder: Path) -> tuple[list[NLUExample], list[list[str]], list[list[str]]]:
    words = [line.split() for line in (folder / "seq.in").read_text().splitlines()]
    tags = [line.split() for line in (folder / "seq.out").read_text().splitlines()]
    intents = (folder / "label").read_text().splitlines()
    assert len(words) == len(tags) == len(intents), f"{folder}: files of different lengths"
    examples = [bio_example(w, t, i) for w, t, i in zip(words, tags, intents, strict=True)]
    return examples, words, tags


def run(name: str, seed: int, params: dict[str, Any], split: str = "test") -> dict[str, object]:
    root = data_dir() / "atis-snips-slotgated" / name
    train, _, _ = load(root / "train")
    test, test_words, test_tags = load(root / split)
    with timed() as took:
        model = train_nlu(NLUData(examples=train), pipeline(**params), seed=seed)
    predictions = [model.parse(e.text) for e in test]
    accuracy = sum(
        p["intent"]["name"] == e.intent for p, e in zip(predictions, test, strict=True)
    ) / len(test)
    gold = [bio_chunks(tags) for tags in test_tags]
    found = [
        bio_chunks(predicted_bio(words, p["entities"]))
        for words, p in zip(test_words, predictions, strict=True)
    ]
    slots = span_scores(gold, found)
    return round_scores(
        {
            "name": name,
            "split": split,
            "examples": len(test),
            "intent_accuracy": accuracy,
            "slot_f1": slots["f1"],
            "slot_precision": slots["precision"],
            "slot_recall": slots["recall"],
            "train_examples": len(train),
            "settings": params,
            **took(),
            **parse_times_ms(model, [e.text for e in test]),
            "seed": seed,
            "load_avg": machine_load(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["atis", "snips"], choices=["atis", "snips"]
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=0, help="0: the model's default")
    parser.add_argument(
        "--validation", action="store_true", help="score the valid split instead of test"
    )
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="a BiLSTMCRF setting NAME=VALUE"
    )
    args = parser.parse_args()
    setup()
    params: dict[str, Any] = dict(args.set)
    if args.epochs:
        params["epochs"] = args.epochs
    for name in args.datasets:
        emit(run(name, args.seed, params, "valid" if args.validation else "test"))


if __name__ == "__main__":
    main()
