"""Braun et al. 2017 corpora (Chatbot, AskUbuntu, WebApplications): intent F1 on their test split.

    python -m training.benchmarks.braun [--corpora chatbot askubuntu webapps] [--seeds 5]

Trained on the sentences marked ``training``, tested on the others. The corpora are small (30 to
100 training sentences), so each is trained with several seeds and the mean and standard deviation
reported. Intent F1 is micro-averaged (every sentence gets one intent, so it equals accuracy); the
weighted F1 and the entities' span F1 are reported too.
"""

from __future__ import annotations

import argparse
import json
import statistics

from chatbot.project.training_data import EntityAnnotation, NLUData, NLUExample
from training.benchmarks._nlu_common import (
    data_dir,
    emit,
    machine_load,
    parse_times_ms,
    pipeline,
    round_scores,
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


def run(name: str, seeds: int) -> dict[str, object]:
    items = json.loads((data_dir() / "nlu-evaluation-corpora" / CORPORA[name]).read_text())
    train = [sentence(s) for s in items["sentences"] if s["training"]]
    test = [sentence(s) for s in items["sentences"] if not s["training"]]
    micro, weighted, entity_f1, train_s, train_cpu_s = [], [], [], [], []
    for seed in range(seeds):
        with timed() as took:
            model = train_nlu(NLUData(examples=train), pipeline(), seed=seed, show_progress=False)
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
            "examples": len(test),
            "train_examples": len(train),
            "seeds": seeds,
            "intent_f1": statistics.mean(micro),
            "intent_f1_std": statistics.pstdev(micro),
            "intent_weighted_f1": statistics.mean(weighted),
            "entity_f1": statistics.mean(entity_f1),
            "best_service_intent_f1": BEST_SERVICE[name],
            "train_s": round(statistics.mean(train_s), 1),
            "train_cpu_s": round(statistics.mean(train_cpu_s), 1),
            **parse_times_ms(model, [e.text for e in test]),
            "load_avg": machine_load(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--seeds", type=int, default=5, help="runs with seeds 0..N-1")
    args = parser.parse_args()
    setup()
    for name in args.corpora:
        emit(run(name, args.seeds))


if __name__ == "__main__":
    main()
