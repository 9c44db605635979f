"""ATIS and SNIPS (the slot-gated copies): intent accuracy and conlleval slot F1 on the test sets.

    python -m training.benchmarks.atis_snips [--datasets atis snips] [--seed 42] [--epochs N]
        [--validation [--and-test]] [--set NAME=VALUE ...] [--select-on-valid] [--train-size N]
        [--sub-ensembles] [--ngram-shares 0,0.1,0.25,0.5]

Trained on ``train`` only (``--select-on-valid``: the epoch that scores best on ``valid`` is
kept, as the published models choose theirs). Slot F1 is conlleval's: exact chunks on the data's
own whitespace tokens, micro-averaged. ``--validation`` scores the ``valid`` split instead of
``test`` (settings are compared there, never on test); ``--set count_vectors=[["word",1,2]]``
sets a ``BiLSTMCRF`` setting (the value is read as JSON, else kept as a string).
``--train-size N`` trains on N utterances of ``train`` drawn at random (seed 0, the same for every
run): a bot-sized training set, for what a setting does to a bot rather than to a benchmark.
``--ngram-shares`` also scores the intent accuracy the same networks give with each of those
shares of the n-gram model (``ngram_intent_weight``, which only mixes the two intent heads at
prediction time), a line per share and split.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chatbot import model_file as model_files
from chatbot.nlu import NLUModel
from chatbot.nlu.runtime import EnsembleRuntime
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


Data = tuple[list[NLUExample], list[list[str]], list[list[str]]]


def load(folder: Path) -> Data:
    words = [line.split() for line in (folder / "seq.in").read_text().splitlines()]
    tags = [line.split() for line in (folder / "seq.out").read_text().splitlines()]
    intents = (folder / "label").read_text().splitlines()
    assert len(words) == len(tags) == len(intents), f"{folder}: files of different lengths"
    examples = [bio_example(w, t, i) for w, t, i in zip(words, tags, intents, strict=True)]
    return examples, words, tags


def run(
    name: str,
    seed: int,
    params: dict[str, Any],
    split: str = "test",
    select_on_valid: bool = False,
    train_size: int = 0,
    and_test: bool = False,
    sub_ensembles: bool = False,
    ngram_shares: Sequence[float] = (),
    save_model: Path | None = None,
    model_file: Path | None = None,
    ensemble_tags: Sequence[str] = (),
) -> list[dict[str, object]]:
    """Train on ``train`` and score ``split``. ``select_on_valid``: keep the weights of the epoch
    that scores best on ``valid`` (``checkpoint_model``), the published models' protocol; with
    ``split="valid"`` they are chosen on its even-numbered utterances and every run also scores
    the odd-numbered ones (``valid_odd_*``), so that runs with and without it compare there.
    ``train_size``: train on that many utterances of ``train``, drawn at random (seed 0; 0: all).
    ``and_test``: with ``split="valid"``, score ``test`` too with the same networks.
    ``sub_ensembles``: also score the ensembles of an ensemble's first 2 ... N-1 members.
    ``ngram_shares``: also the intent accuracy with each of these n-gram shares.
    ``ensemble_tags``: also score an ensemble's slots with each of these ``ensemble_tags``.
    ``save_model``: write the trained model there; ``model_file``: score that model (written by
    ``save_model``) instead of training one."""
    root = data_dir() / "atis-snips-slotgated" / name
    train, _, _ = load(root / "train")
    if 0 < train_size < len(train):
        train = random.Random(0).sample(train, train_size)
    selection = None
    if select_on_valid:
        params = {**params, "checkpoint_model": True}
        valid = load(root / "valid")[0]
        selection = valid[0::2] if split == "valid" else valid
    with timed() as took:
        if model_file is not None:
            meta, tensors = model_files.load(model_file)
            model = NLUModel.from_export(tensors, meta)
        else:
            model = train_nlu(
                NLUData(examples=train), pipeline(**params), seed=seed, eval_data=selection
            )
    if save_model is not None:
        tensors, meta = model.export()
        model_files.save(save_model, dict(meta), tensors)
    splits = [split, "test"] if and_test and split == "valid" else [split]
    results: list[dict[str, object]] = []
    for scored_split in splits:
        data = load(root / scored_split)
        test = data[0]

        results.append(
            round_scores(
                {
                    "name": name,
                    "split": scored_split,
                    "examples": len(test),
                    **scored(model, data, scored_split),
                    "train_examples": len(train),
                    "settings": params,
                    **took(),
                    **parse_times_ms(model, [e.text for e in test]),
                    "seed": seed,
                    **({"scored_model": str(model_file)} if model_file is not None else {}),
                    "load_avg": machine_load(),
                }
            )
        )
        # An ensemble's networks are also scored one by one: the same seeds' single models.
        members = model.members() if model.settings.ensemble_size > 1 else []
        results.extend(
            round_scores(
                {
                    "name": name,
                    "split": scored_split,
                    "member": i,
                    "seed": seed + i,
                    **scored(m, data, scored_split),
                }
            )
            for i, m in enumerate(members)
        )
        results.extend(
            round_scores(
                {
                    "name": name,
                    "split": scored_split,
                    "ngram_share": share,
                    "seed": seed,
                    "intent_accuracy": intent_accuracy(model, test, share),
                }
            )
            for share in ngram_shares
        )
        results.extend(
            round_scores(
                {
                    "name": name,
                    "split": scored_split,
                    "ensemble_tags": tags,
                    "seed": seed,
                    **scored(decoded_with(model, tags), data, scored_split),
                }
            )
            for tags in ensemble_tags
            if members
        )
        if sub_ensembles:
            results.extend(
                round_scores(
                    {
                        "name": name,
                        "split": scored_split,
                        "ensemble_of": size,
                        "seed": seed,
                        **scored(sub_ensemble(model, size), data, scored_split),
                    }
                )
                for size in range(2, len(members))
            )
    return results


def scored(model: NLUModel, data: Data, split: str) -> dict[str, float]:
    examples, words, tags = data
    predictions = [model.parse(e.text) for e in examples]
    scores = _scores(predictions, examples, words, tags)
    if split == "valid":
        odd = _scores(predictions[1::2], examples[1::2], words[1::2], tags[1::2])
        scores.update({f"valid_odd_{key}": value for key, value in odd.items()})
    return scores


def intent_accuracy(model: NLUModel, examples: Sequence[NLUExample], share: float) -> float:
    """The intent accuracy with ``share`` of the n-gram model in the intent probabilities."""
    intents = model.intents
    right = sum(
        intents[int(np.argmax(model.intent_probabilities(e.text, share)))] == e.intent
        for e in examples
    )
    return right / len(examples)


def sub_ensemble(model: NLUModel, size: int) -> NLUModel:
    """The ensemble of ``model``'s first ``size`` members (2 or more)."""
    return _ensemble(model, size, model.settings.ensemble_tags)


def decoded_with(model: NLUModel, tags: str) -> NLUModel:
    """``model`` (an ensemble) with its entity tags decoded as ``tags`` says (``ensemble_tags``)."""
    return _ensemble(model, model.settings.ensemble_size, tags)


def _ensemble(model: NLUModel, size: int, tags: str) -> NLUModel:
    assert isinstance(model.runtime, EnsembleRuntime)
    settings = replace(model.settings, ensemble_size=size, ensemble_tags=tags)
    runtime = EnsembleRuntime(model.runtime.members[:size], settings)
    return NLUModel(settings, model.labels, model.featurizer, runtime, model.synonyms)


def _scores(
    predictions: Sequence[Mapping[str, Any]],
    examples: Sequence[NLUExample],
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
) -> dict[str, float]:
    accuracy = sum(
        p["intent"]["name"] == e.intent for p, e in zip(predictions, examples, strict=True)
    ) / len(examples)
    gold = [bio_chunks(t) for t in tags]
    found = [
        bio_chunks(predicted_bio(w, p["entities"])) for w, p in zip(words, predictions, strict=True)
    ]
    slots = span_scores(gold, found)
    return {
        "intent_accuracy": accuracy,
        "slot_f1": slots["f1"],
        "slot_precision": slots["precision"],
        "slot_recall": slots["recall"],
    }


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
        "--and-test",
        action="store_true",
        help="with --validation: score test too with the same networks",
    )
    parser.add_argument(
        "--sub-ensembles",
        action="store_true",
        help="also score the ensembles of an ensemble's first 2 ... N-1 members",
    )
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="a BiLSTMCRF setting NAME=VALUE"
    )
    parser.add_argument(
        "--train-size", type=int, default=0, help="train on N utterances of train drawn at random"
    )
    parser.add_argument(
        "--ngram-shares",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[],
        help="also score intent accuracy with each of these n-gram shares (e.g. 0,0.25,0.5)",
    )
    parser.add_argument(
        "--select-on-valid",
        action="store_true",
        help="keep the epoch's weights that score best on valid (with --validation: on its "
        "even-numbered utterances)",
    )
    parser.add_argument(
        "--ensemble-tags",
        type=lambda text: text.split(","),
        default=[],
        help="also score an ensemble's slots with each of these decodings (scores,marginals)",
    )
    parser.add_argument("--save-model", type=Path, help="write the trained model to this file")
    parser.add_argument(
        "--model",
        type=Path,
        help="score this model (written by --save-model, one dataset) instead of training one",
    )
    args = parser.parse_args()
    if args.model is not None and len(args.datasets) != 1:
        parser.error("--model scores one dataset: name it with --datasets")
    setup()
    params: dict[str, Any] = dict(args.set)
    if args.epochs:
        params["epochs"] = args.epochs
    for name in args.datasets:
        split = "valid" if args.validation else "test"
        for result in run(
            name,
            args.seed,
            params,
            split,
            select_on_valid=args.select_on_valid,
            train_size=args.train_size,
            and_test=args.and_test,
            sub_ensembles=args.sub_ensembles,
            ngram_shares=args.ngram_shares,
            save_model=args.save_model.with_name(f"{name}-{args.save_model.name}")
            if args.save_model
            else None,
            model_file=args.model,
            ensemble_tags=args.ensemble_tags,
        ):
            emit(result)


if __name__ == "__main__":
    main()
