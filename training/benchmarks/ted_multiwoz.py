"""Generalisation benchmark: the TED paper's MultiWOZ 2.1 stories (740 train / 185 test).

Vlasov, Mosig & Nichol, "Dialogue Transformers" (2019), trained TED on these stories and ran
``rasa test core`` on the test stories: every action is predicted from the true history. Four
variants, with TED's action-level accuracy from the test logs in the data folder:

- ``modular``: user turns are intents with entities, bot turns dialogue acts (TED 0.645);
- ``modular-status``: plus slots with the status of database queries (TED 0.713);
- ``e2e``: user and bot turns are delexicalised texts (TED 0.615);
- ``e2e-status``: plus the status slots (TED 0.648).

Those figures count ``action_listen`` (1,358 of them) as Rasa's ``accuracy_score`` does; the logs'
"Correct: N / 2297" is that accuracy times the number of *other* actions. The bot actions alone
are the logs' classification-report micro average: TED 0.55 / 0.64 / 0.23 / 0.30. We print both.

End to end, the model picks one of the bot texts it was trained on; as in the paper's report, a
prediction counts as right when its dialogue acts (the acts the modular story has for that turn,
sorted and joined; ``action_book_*`` API calls are not acts) are the acts of the true turn. The
LSTM policy alone is trained, no rules or memoization.

    .venv/bin/python -m training.benchmarks.ted_multiwoz [--variants modular e2e] [--set epochs=40]

Prints one JSON object per variant. Data: ``$CHATBOT_DATA_DIR/ted-paper`` (default
``../shared/data`` beside the checkout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from chatbot.agent import TrainedModel
from chatbot.project.domain import ACTION_LISTEN, Domain
from chatbot.project.project import Project
from chatbot.project.stories import ActionStep, Story, UserStep, bot_texts_of
from training.benchmarks.rasa1_data import read_markdown_stories, read_rasa1_domain
from training.dialogue import training_data
from training.evaluate import StoryEvaluation, evaluate_stories
from training.lstm import LSTMSettings, train_lstm

REPO_ROOT = Path(__file__).resolve().parents[2]
# variant -> (experiment folder, end to end, TED's accuracy with and without action_listen)
VARIANTS: dict[str, tuple[str, bool, float, float]] = {
    "modular": ("SUBMIT-modular-mh10", False, 0.645, 0.55),
    "modular-status": ("SUBMIT-modular-mh10-status", False, 0.713, 0.64),
    "e2e": ("SUBMIT-e2e-mh10", True, 0.615, 0.23),
    "e2e-status": ("SUBMIT-e2e-mh10-status", True, 0.648, 0.30),
}
# The settings we report. A handful of variations were tried (see docs/benchmarks.md, "Dialogue");
# end to end, bot texts are scored by their words alone, and the current state also goes to the
# head directly.
SETTINGS = LSTMSettings(
    hidden_size=128,
    embed_dim=128,
    dropout=0.1,
    feature_dropout=0.1,
    epochs=100,
    batch_size=16,
    augmentation_factor=0,
    validation_split=0.1,
    patience=15,
)
E2E_SETTINGS = dataclasses.replace(SETTINGS, dropout=0.3, label_weights=False, skip_input=True)


def data_dir() -> Path:
    """``$CHATBOT_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    path = Path(os.environ.get("CHATBOT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "ted-paper").is_dir():
        raise SystemExit(f"TED paper data not found under {path}; set CHATBOT_DATA_DIR")
    return path / "ted-paper" / "multiwoz_dialogues_data" / "compute"


def load(folder: Path, end_to_end: bool) -> tuple[Domain, list[Story], list[Story]]:
    # End-to-end domains list every bot text under ``actions`` (not valid YAML everywhere): the
    # texts come from the stories instead, and only the slots are read.
    domain = read_rasa1_domain(folder / "domain.yml", with_actions=not end_to_end)
    stories = [
        read_markdown_stories(
            folder / "data" / split / "stories.md", end_to_end=end_to_end, slots=domain.slots
        )
        for split in ("train", "test")
    ]
    return domain, stories[0], stories[1]


def turn_acts(story: Story) -> list[str]:
    """The dialogue acts of each bot turn of a modular story, sorted and joined (the paper's
    end-to-end labels); API calls (``action_book_*``) are not acts."""
    turns: list[list[str]] = []
    for step in story.steps:
        if isinstance(step, UserStep):
            turns.append([])
        elif isinstance(step, ActionStep) and turns and step.name:
            turns[-1].extend([] if step.name.startswith("action_") else [step.name])
    return ["_".join(sorted(acts)) for acts in turns]


def act_labels(root: Path, e2e: list[Story], split: str) -> dict[str, list[str]]:
    """For each end-to-end story, the acts of each of its bot turns (from the modular story)."""
    modular = {
        s.name: s
        for s in read_markdown_stories(
            root / "SUBMIT-modular-mh10" / "data" / split / "stories.md", end_to_end=False
        )
    }
    labels: dict[str, list[str]] = {}
    for story in e2e:
        acts = turn_acts(modular[story.name])
        bot_turns = sum(isinstance(s, ActionStep) for s in story.steps)
        assert len(acts) == bot_turns, (story.name, len(acts), bot_turns)
        labels[story.name] = acts
    return labels


def scores(
    evaluation: StoryEvaluation, same: Callable[[str, str, str, int], bool]
) -> dict[str, Any]:
    """Accuracy over all predicted actions and over the bot actions alone (no listens);
    ``same(story, gold, predicted, bot_turn)`` says whether a prediction is right."""
    right = total = bot_right = bot_total = 0
    for result in evaluation.results:
        turn = 0
        for gold, predicted in result.pairs:
            ok = same(result.story.name, gold, predicted, turn)
            right, total = right + ok, total + 1
            if gold != ACTION_LISTEN:
                bot_right, bot_total = bot_right + ok, bot_total + 1
                turn += 1
    return {
        "action_accuracy": round(right / total, 4),
        "actions": total,
        "bot_action_accuracy": round(bot_right / bot_total, 4),
        "bot_actions": bot_total,
    }


def exact(story: str, gold: str, predicted: str, turn: int) -> bool:
    return gold == predicted


def same_acts(train: list[Story], test: list[Story], root: Path) -> Callable[..., bool]:
    """End to end: right when the predicted bot text's acts (its most frequent acts in the
    training stories) are the true turn's acts; listening is right when it is listening."""
    train_acts = act_labels(root, train, "train")
    by_text: dict[str, Counter[str]] = {}
    for story in train:
        texts = [s.text for s in story.steps if isinstance(s, ActionStep)]
        for text, acts in zip(texts, train_acts[story.name], strict=True):
            by_text.setdefault(str(text), Counter())[acts] += 1
    text_acts = {text: counts.most_common(1)[0][0] for text, counts in by_text.items()}
    test_acts = act_labels(root, test, "test")

    def same(story: str, gold: str, predicted: str, turn: int) -> bool:
        if gold == ACTION_LISTEN or predicted == ACTION_LISTEN:
            return gold == predicted
        return text_acts.get(predicted) == test_acts[story][turn]

    return same


def run(variant: str, changes: dict[str, Any], seed: int, show_progress: bool) -> dict[str, Any]:
    root = data_dir()
    folder, end_to_end, ted, ted_bot = VARIANTS[variant]
    domain, train, test = load(root / folder, end_to_end)
    settings = dataclasses.replace(E2E_SETTINGS if end_to_end else SETTINGS, **changes)
    data = training_data(Project(root / folder, domain, stories=train))
    threads = torch.get_num_threads()
    started, cpu = time.perf_counter(), time.process_time()
    policy = train_lstm(
        domain,
        data.stories,
        (),
        settings,
        bot_texts=bot_texts_of(train),
        seed=seed,
        show_progress=show_progress,
    )
    train_s, train_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    model = TrainedModel(domain, [policy], None, {"fallback_threshold": 0.0})
    torch.set_num_threads(1)
    try:
        evaluation = evaluate_stories(model, test)
    finally:
        torch.set_num_threads(threads)
    same = same_acts(train, test, root) if end_to_end else exact
    return {
        "name": f"ted_multiwoz_{variant}",
        "split": "test",
        **scores(evaluation, same),
        "ted_action_accuracy": ted,
        "ted_bot_action_accuracy": ted_bot,
        "conversation_accuracy": round(evaluation.conversation_accuracy, 4),
        "train_s": round(train_s, 1),
        "train_cpu_s": round(train_cpu_s, 1),
        "train_stories": len(train),
        "test_stories": len(test),
        "seed": seed,
        "load_avg": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="LSTM settings to change"
    )
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    for variant in args.variants:
        print(json.dumps(run(variant, changes, args.seed, args.progress)), flush=True)


if __name__ == "__main__":
    main()
