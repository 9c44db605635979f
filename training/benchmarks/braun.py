"""Braun et al. 2017 corpora (Chatbot, AskUbuntu, WebApplications): intent F1 on their test split.

    python -m training.benchmarks.braun [--corpora chatbot askubuntu webapps] [--seeds 5]
    python -m training.benchmarks.braun --cv 5 [--per-intent N] [--set ngram_intent_weight=0.5 ...]

Trained on the sentences marked ``training``, tested on the others. The corpora are small (30 to
100 training sentences), so each is trained with several seeds and the mean and standard deviation
reported. Intent F1 is micro-averaged (every sentence gets one intent, so it equals accuracy); the
weighted F1 and the entities' span F1 are reported too.

``--cv K`` never reads the test sentences: it cross-validates on the training split (K stratified
folds, the same folds for every seed), the way to choose settings for data this small. ``--set``
overrides a model setting (a JSON value) in either mode; ``mix_acc`` in a ``--cv`` line is the
held-out accuracy for other shares of the n-gram model (``ngram_intent_weight``), read from the
same trained models. ``--per-intent N`` cross-validates on the first N training sentences of
each intent only (how the heads compare as the data grows).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

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
from training.nlu.metrics import classification_report, span_scores

CORPORA = {
    "chatbot": "ChatbotCorpus.json",
    "askubuntu": "AskUbuntuCorpus.json",
    "webapps": "WebApplicationsCorpus.json",
}
BEST_SERVICE = {"chatbot": 0.98, "askubuntu": 0.92, "webapps": 0.83}  # LUIS/Watson, README
MIX_SHARES = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def sentence(item: dict) -> NLUExample:
    """An example with its entities found by their ``text`` (the corpora's ``start``/``stop`` count
    tokens of a tokenizer that splits at punctuation, which we do not reproduce)."""
    text = item["text"]
    lowered = text.lower()
    entities = []
    for e in sorted(item.get("entities", []), key=lambda e: e["start"]):
        start = lowered.find(e["text"].lower())
        if start >= 0:
            end = start + len(e["text"])
            entities.append(EntityAnnotation(start, end, text[start:end], e["entity"]))
    return NLUExample(text, item["intent"], tuple(entities))


def load(name: str) -> tuple[list[NLUExample], list[NLUExample]]:
    """The corpus's training and test sentences."""
    items = json.loads((data_dir() / "nlu-evaluation-corpora" / CORPORA[name]).read_text())
    train = [sentence(s) for s in items["sentences"] if s["training"]]
    test = [sentence(s) for s in items["sentences"] if not s["training"]]
    return train, test


def run(name: str, seeds: int, params: dict[str, Any]) -> dict[str, object]:
    train, test = load(name)
    micro, weighted, entity_f1, train_s, train_cpu_s = [], [], [], [], []
    for seed in range(seeds):
        with timed() as took:
            model = train_nlu(
                NLUData(examples=train), pipeline(**params), seed=seed, show_progress=False
            )
        train_s.append(took()["train_s"])
        train_cpu_s.append(took()["train_cpu_s"])
        results = [model.parse(e.text) for e in test]
        report = classification_report(
            [e.intent for e in test], [str(r["intent"]["name"]) for r in results]
        )
        micro.append(report["micro avg"]["f1-score"])  # type: ignore[index]
        weighted.append(report["weighted avg"]["f1-score"])  # type: ignore[index]
        gold = [{(a.entity, a.start, a.end) for a in e.entities} for e in test]
        found = [{(x["entity"], x["start"], x["end"]) for x in r["entities"]} for r in results]
        entity_f1.append(span_scores(gold, found)["f1"])
    return round_scores(
        {
            "name": f"braun-{name}",
            "split": "test",
            "settings": params,
            "examples": len(test),
            "train_examples": len(train),
            "seeds": seeds,
            "intent_f1": statistics.mean(micro),
            "intent_f1_std": statistics.pstdev(micro),
            "intent_f1_per_seed": [round(x, 4) for x in micro],
            "intent_weighted_f1": statistics.mean(weighted),
            "entity_f1": statistics.mean(entity_f1),
            "best_service_intent_f1": BEST_SERVICE[name],
            "train_s": round(statistics.mean(train_s), 1),
            "train_cpu_s": round(statistics.mean(train_cpu_s), 1),
            **parse_times_ms(model, [e.text for e in test]),
            "load_avg": machine_load(),
        }
    )


def folds(examples: Sequence[NLUExample], k: int) -> list[list[int]]:
    """``k`` stratified folds of example indices: each intent's examples shuffled (fixed seed)
    and dealt round-robin, starting where the previous intent stopped, so folds stay even."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        by_intent[e.intent].append(i)
    rng = np.random.default_rng(0)
    result: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for intent in sorted(by_intent):
        for i in rng.permutation(by_intent[intent]):
            result[position % k].append(int(i))
            position += 1
    return result


def at_most(examples: Sequence[NLUExample], per_intent: int) -> list[NLUExample]:
    """The first ``per_intent`` examples of each intent, in the corpus's order."""
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for e in examples:
        seen[e.intent] += 1
        if seen[e.intent] <= per_intent:
            kept.append(e)
    return kept


def cross_validate(
    name: str, k: int, seeds: int, params: dict[str, Any], per_intent: int = 0
) -> dict[str, object]:
    """Held-out intent accuracy on the training split (its first ``per_intent`` examples of each
    intent if given), over ``k`` folds, for each seed."""
    train, _ = load(name)
    if per_intent:
        train = at_most(train, per_intent)
    split = folds(train, k)
    accuracy: list[float] = []
    mix: dict[float, list[float]] = {share: [] for share in MIX_SHARES}
    cpu_s = 0.0
    for seed in range(seeds):
        right = 0
        mix_right = dict.fromkeys(MIX_SHARES, 0)
        for held in split:
            held_set = set(held)
            fit = [e for i, e in enumerate(train) if i not in held_set]
            with timed() as took:
                model = train_nlu(
                    NLUData(examples=fit), pipeline(**params), seed=seed, show_progress=False
                )
            cpu_s += took()["train_cpu_s"]
            for i in held:
                gold = train[i].intent
                right += model.parse(train[i].text)["intent"]["name"] == gold
                for share in MIX_SHARES:
                    probs = model.intent_probabilities(train[i].text, share)
                    mix_right[share] += model.labels.intents[int(np.argmax(probs))] == gold
        accuracy.append(right / len(train))
        for share in MIX_SHARES:
            mix[share].append(mix_right[share] / len(train))
    return round_scores(
        {
            "name": f"braun-{name}",
            "split": f"train-cv{k}" + (f"-at-most-{per_intent}-per-intent" if per_intent else ""),
            "settings": params,
            "examples": len(train),
            "seeds": seeds,
            "cv_acc": statistics.mean(accuracy),
            "cv_acc_std": statistics.pstdev(accuracy),
            "mix_acc": {str(s): round(statistics.mean(v), 4) for s, v in mix.items()},
            "train_cpu_s": round(cpu_s / (seeds * k), 1),
            "load_avg": machine_load(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--seeds", type=int, default=5, help="runs with seeds 0..N-1")
    parser.add_argument(
        "--cv", type=int, default=0, metavar="K", help="K-fold cross-validation on train only"
    )
    parser.add_argument(
        "--per-intent", type=int, default=0, metavar="N", help="--cv on N examples per intent"
    )
    parser.add_argument(
        "--set",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model setting (JSON)",
    )
    args = parser.parse_args()
    params = dict(args.set)
    setup()
    for name in args.corpora:
        if args.cv:
            emit(cross_validate(name, args.cv, args.seeds, params, args.per_intent))
        else:
            emit(run(name, args.seeds, params))


if __name__ == "__main__":
    main()
