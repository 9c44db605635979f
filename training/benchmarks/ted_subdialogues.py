"""Sub-dialogues benchmark: the TED paper's hotel and restaurant stories with digressions.

Vlasov, Mosig & Nichol, "Dialogue Transformers" (2019), section 4.2, used the stories of the REDP
paper (Vlasov, Drissner-Schmid & Nichol, "Few-Shot Generalization Across Dialogue Tasks", 2018):
a bot asks for the slots of a hotel or restaurant booking, and the user digresses (chitchat,
``explain``, ``correct``, ``did_that_work``) before answering; after a digression the bot must
come back to the question it was asking. Training: restaurant and hotel stories (happy paths and
simulated ones with digressions); test: hotel stories with digressions. The data is Rasa 1.x
Markdown with no domain file: the domain comes from the stories (``domain_of_stories``: entities
are ``text`` slots, featurized as set or not).

The LSTM policy alone is trained (no rules, no memoization) on the train files and the test
stories are replayed with their true history, as ``rasa test core`` does. Printed: accuracy over
every predicted action (with ``action_listen``, as Rasa's accuracy), over the bot actions alone,
and the fraction of test stories whose every action is right (the paper's and REDP's measure).

``--hotel-stories N ...`` keeps only the first N simulated hotel training stories (the paper plots
accuracy against the number of hotel training stories; the restaurant stories and the happy paths
are always kept).

    .venv/bin/python -m training.benchmarks.ted_subdialogues [--hotel-stories 0 20 79] [--seed 1]

Prints one JSON object per run. Data: ``$CHATBOT_DATA_DIR/ted-paper`` (default ``../shared/data``
beside the checkout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from chatbot.agent import TrainedModel
from chatbot.project.domain import ACTION_LISTEN, Domain
from chatbot.project.project import Project
from chatbot.project.stories import Story
from training.benchmarks.rasa1_data import domain_of_stories, read_markdown_stories
from training.dialogue import training_data
from training.evaluate import evaluate_stories
from training.lstm import LSTMSettings, train_lstm

REPO_ROOT = Path(__file__).resolve().parents[2]
# The MultiWOZ benchmark's settings (ted_multiwoz.SETTINGS), trained for all epochs on every
# training story: a held-out tenth (15 stories) is learnt perfectly within a few epochs and stopped
# training far too early (see docs/benchmarks.md, "Dialogue" for the variations tried). No stories
# glued together: the simulated stories already put digressions at every point of the form.
SETTINGS = LSTMSettings(
    hidden_size=128,
    embed_dim=128,
    dropout=0.1,
    feature_dropout=0.1,
    epochs=100,
    batch_size=16,
    augmentation_factor=0,
    validation_split=0.0,
)
SIMULATED_HOTEL = ("simulated_hotel_train", "simulated_hotel_train2")


def data_dir() -> Path:
    """``$CHATBOT_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    path = Path(os.environ.get("CHATBOT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "ted-paper").is_dir():
        raise SystemExit(f"TED paper data not found under {path}; set CHATBOT_DATA_DIR")
    return path / "ted-paper" / "sub_dialogues_data" / "core"


def read_split(folder: Path, slots: Any = ()) -> dict[str, list[Story]]:
    """The stories of each Markdown file of a folder, by file stem; story names get the stem as
    a prefix (two test files have a story of the same name)."""
    return {
        path.stem: [
            dataclasses.replace(story, name=f"{path.stem}/{story.name}")
            for story in read_markdown_stories(path, end_to_end=False, slots=slots)
        ]
        for path in sorted(folder.glob("*.md"))
    }


def load(root: Path) -> tuple[Domain, dict[str, list[Story]], list[Story]]:
    """The domain (from every train and test story, as a domain file would list the bot's
    intents and actions), the training stories by file, and the test stories."""
    every = [
        s for split in ("train", "test") for ss in read_split(root / split).values() for s in ss
    ]
    domain = domain_of_stories(every)
    train = read_split(root / "train", domain.slots)
    test = [s for ss in read_split(root / "test", domain.slots).values() for s in ss]
    return domain, train, test


def run(
    hotel_stories: int | None, changes: dict[str, Any], seed: int, show_progress: bool
) -> dict[str, Any]:
    root = data_dir()
    domain, by_file, test = load(root)
    simulated_hotel = [s for stem in SIMULATED_HOTEL for s in by_file.get(stem, [])]
    kept_hotel = simulated_hotel if hotel_stories is None else simulated_hotel[:hotel_stories]
    train = [s for stem, ss in by_file.items() if stem not in SIMULATED_HOTEL for s in ss]
    train += kept_hotel
    settings = dataclasses.replace(SETTINGS, **changes)
    data = training_data(Project(root, domain, stories=train))
    threads = torch.get_num_threads()
    started, cpu = time.perf_counter(), time.process_time()
    policy = train_lstm(domain, data.stories, (), settings, seed=seed, show_progress=show_progress)
    train_s, train_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    model = TrainedModel(domain, [policy], None, {"fallback_threshold": 0.0})
    torch.set_num_threads(1)
    try:
        evaluation = evaluate_stories(model, test)
    finally:
        torch.set_num_threads(threads)
    pairs = [p for r in evaluation.results for p in r.pairs]
    bot = [(g, p) for g, p in pairs if g != ACTION_LISTEN]
    return {
        "name": "ted_subdialogues",
        "split": "test",
        "action_accuracy": round(sum(g == p for g, p in pairs) / len(pairs), 4),
        "actions": len(pairs),
        "bot_action_accuracy": round(sum(g == p for g, p in bot) / len(bot), 4),
        "bot_actions": len(bot),
        "conversation_accuracy": round(evaluation.conversation_accuracy, 4),
        "conversations_correct": sum(r.passed for r in evaluation.results),
        "test_stories": len(evaluation.results),
        "train_stories": len(train),
        "hotel_train_stories": len(kept_hotel),
        "train_s": round(train_s, 1),
        "train_cpu_s": round(train_cpu_s, 1),
        "seed": seed,
        "load_avg": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hotel-stories",
        nargs="+",
        type=int,
        default=None,
        help="train on the first N simulated hotel stories (default: all)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="LSTM settings to change"
    )
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    for n in args.hotel_stories or [None]:
        print(json.dumps(run(n, changes, args.seed, args.progress)), flush=True)


if __name__ == "__main__":
    main()
