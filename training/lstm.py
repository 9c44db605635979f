"""Training the LSTM dialog-state tracker (``LSTMPolicy``; Rasa's ``TEDPolicy``/``KerasPolicy``).

Stories and rules are replayed through ``Conversation``, so the tracker learns from exactly the
states it sees at run time. Stories are augmented (glued together, ``training.augmentation``),
a held-out part of the stories stops training early when there are enough of them, and a fixed
seed gives byte-identical models on identical data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn import functional as F
from tqdm import tqdm

from chatbot.conversation.state import TEXT
from chatbot.dialogue.action_masks import ActionMasks
from chatbot.dialogue.featurizer import StateFeaturizer
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.dialogue.lstm_runtime import EnsembleTrackerRuntime, TrackerRuntime
from chatbot.dialogue.lstm_tracker import DialogueStateTracker, TrackerConfig, masked_log_probs
from chatbot.errors import TrainingError
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import Domain
from chatbot.project.project import Project
from chatbot.project.stories import bot_texts_of
from training.augmentation import augment
from training.divergence import diverged, is_finite, optimizer_step
from training.lstm_data import IGNORE, Tensors, examples_of, tensorize
from training.lstm_settings import LSTMSettings, settings_from_config
from training.optim import Adam
from training.replay import conflict_message, conflicts, replay

logger = logging.getLogger(__name__)


def make_lstm_trainer(
    *, seed: int = 42, show_progress: bool = True, augmentation: int | None = None
) -> Callable[[Project, Any, ComponentConfig], LSTMPolicy]:
    """The ``lstm_trainer`` that ``training.dialogue.train_policies`` calls. ``augmentation``:
    every LSTM policy's ``augmentation_factor``, whatever its config says."""

    def trainer(project: Project, data: Any, config: ComponentConfig) -> LSTMPolicy:
        settings = settings_from_config(config, notices=False)  # check_config said them
        if augmentation is not None:
            settings = dataclasses.replace(settings, augmentation_factor=augmentation)
        return train_lstm(
            project.domain,
            [*data.stories, *getattr(data, "form_paths", ())],
            data.rules,
            settings,
            bot_texts=bot_texts_of([*project.stories, *project.rules]),
            seed=settings.random_seed if settings.random_seed is not None else seed,
            show_progress=show_progress,
        )

    return trainer


def train_lstm(
    domain: Domain,
    stories: Sequence[Any],
    rules: Sequence[Any] = (),
    settings: LSTMSettings | None = None,
    *,
    bot_texts: Sequence[str] = (),
    seed: int = 42,
    show_progress: bool = True,
) -> LSTMPolicy:
    """Fit the tracker on stories and rules (``training.story_events.TrainingConversation``);
    ``bot_texts`` are the end-to-end bot turns of the stories that the domain does not list."""
    s = settings or LSTMSettings()
    story_steps = [replay(c, domain) for c in stories]
    rule_steps = [replay(c, domain) for c in rules]
    everything = [seq for steps in (*story_steps, *rule_steps) for seq in steps.sequences]
    if not any(t is not None for _, targets in everything for t in targets):
        raise TrainingError(
            "LSTMPolicy: no story or rule has an action to learn; add stories (data/stories.yml) "
            "or remove LSTMPolicy/TEDPolicy from the policies in config.yml"
        )
    # The user's own stories; copies the training made may contradict each other where the
    # user's do not (a rule put into two form paths): the tracker learns the more frequent way.
    written = [steps for steps, c in zip(story_steps, stories, strict=True) if not c.generated]
    report_conflicts(written, s.max_history)

    texts = [v for states, _ in everything for state in states for k, v in state if k == TEXT]
    featurizer = StateFeaturizer.build(
        domain, texts, bot_texts, action_name_words=s.action_name_words
    )
    runtimes, trained = [], torch.zeros(featurizer.num_labels, dtype=torch.bool)
    for member_seed in range(seed, seed + s.ensemble_size):
        model, labels = _train_tracker(
            domain,
            stories,
            story_steps,
            rule_steps,
            len(rules),
            featurizer,
            s,
            member_seed,
            show_progress,
        )
        runtimes.append(TrackerRuntime.from_module(model))
        trained |= labels  # a label some member learned is not masked
    return LSTMPolicy(
        runtimes[0] if len(runtimes) == 1 else EnsembleTrackerRuntime(runtimes),
        featurizer,
        trained,
        cache_size=s.cache_size,
        use_intent_ranking=s.use_intent_ranking,
        priority=s.priority,
        # Stories only: a slot a rule does not mention is any value, not an unset one.
        masks=ActionMasks.build(domain, stories),
    )


def _train_tracker(
    domain: Domain,
    stories: Sequence[Any],
    story_steps: Sequence[Any],
    rule_steps: Sequence[Any],
    num_rules: int,
    featurizer: StateFeaturizer,
    s: LSTMSettings,
    seed: int,
    show_progress: bool,
) -> tuple[DialogueStateTracker, torch.Tensor]:
    """One tracker, fitted with ``seed`` (its held-out stories, glued stories, initial weights
    and batch order); returns it with the labels its training data asked for."""
    rng = random.Random(seed)
    order = list(range(len(stories)))
    rng.shuffle(order)
    n_val = (
        round(len(stories) * s.validation_split) if len(stories) >= s.min_validation_stories else 0
    )
    held = set(order[:n_val])
    train, val, glued = _examples(
        domain, stories, story_steps, rule_steps, held, featurizer, s, seed
    )
    trained = _targets_of(train, featurizer)
    copies = sum(1 for c in stories if c.generated)
    logger.info(
        "LSTMPolicy: %d stories (%s%d held out), %d glued, %d rules -> %d training sequences",
        len(stories),
        f"{copies} of them the training's copies (form paths, rules in stories), "
        if copies
        else "",
        n_val,
        glued,
        num_rules,
        len(train),
    )
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(max(1, s.num_threads))
        try:
            model = _new_model(featurizer, s)
            train_tensors = tensorize(train, featurizer)
            val_tensors = tensorize(val, featurizer) if val else None
            best_epoch = _fit(model, train_tensors, val_tensors, trained, s, rng, show_progress)
            if s.refit and val:
                # Every story now, for the epochs the held-out ones chose (settings.refit).
                train, _, _ = _examples(
                    domain, stories, story_steps, rule_steps, set(), featurizer, s, seed
                )
                trained = _targets_of(train, featurizer)
                logger.info("LSTMPolicy: trained again on every story for %d epochs", best_epoch)
                torch.manual_seed(seed)
                model = _new_model(featurizer, s)
                again = dataclasses.replace(s, epochs=best_epoch)
                _fit(model, tensorize(train, featurizer), None, trained, again, rng, show_progress)
        finally:
            torch.set_num_threads(threads)
    return model, trained


def _examples(
    domain: Domain,
    stories: Sequence[Any],
    story_steps: Sequence[Any],
    rule_steps: Sequence[Any],
    held: set[int],
    featurizer: StateFeaturizer,
    s: LSTMSettings,
    seed: int,
) -> tuple[list[Any], list[Any], int]:
    """The training sequences (the stories not ``held``, their glued copies, the rules), the
    held-out ones, and how many glued copies there are."""
    train_convs = [c for i, c in enumerate(stories) if i not in held]
    glued = augment(train_convs, augmentation_factor=s.augmentation_factor, seed=seed)
    train_steps = [story_steps[i] for i in range(len(stories)) if i not in held]
    train_steps += [replay(c, domain) for c in glued] + list(rule_steps)
    val_steps = [story_steps[i] for i in sorted(held)]
    train = examples_of(train_steps, featurizer, s.max_history)
    val = examples_of(val_steps, featurizer, s.max_history, dedup=False)
    return train, val, len(glued)


def _targets_of(examples: Sequence[Any], featurizer: StateFeaturizer) -> torch.Tensor:
    """The labels some training sequence asks for."""
    trained = torch.zeros(featurizer.num_labels, dtype=torch.bool)
    for ex in examples:
        for t in ex.targets:
            if t >= 0:
                trained[t] = True
    return trained


def report_conflicts(steps: Sequence[Any], max_history: int | None, limit: int = 5) -> int:
    """Log an error line for histories that stories continue with different actions (naming
    both stories); returns how many there are. Training goes on: the tracker learns the more
    frequent continuation, and the memoization and rule policies are unaffected."""
    found = conflicts(steps, max_history)
    for first, second, state_index in found[:limit]:
        quoted = ((f"'{first[0]}'", first[1]), (f"'{second[0]}'", second[1]))
        logger.error("%s", conflict_message(*quoted, state_index, max_history))
    if len(found) > limit:
        logger.error("... and %d more contradictions between stories", len(found) - limit)
    return len(found)


def _new_model(featurizer: StateFeaturizer, s: LSTMSettings) -> DialogueStateTracker:
    use_words = (
        s.label_features
        if s.label_features is not None
        else any(" " in label for label in featurizer.labels)
    )
    vocab: dict[str, int] = {}
    label_words = [featurizer.label_words(label) for label in featurizer.labels]
    if use_words:
        for ws in label_words:
            for w in ws:
                vocab.setdefault(w, len(vocab) + 1)
    config = TrackerConfig(
        num_features=featurizer.num_features,
        num_labels=featurizer.num_labels,
        embed_dim=s.embed_dim,
        hidden_size=s.hidden_size,
        num_layers=s.num_layers,
        dropout=s.dropout,
        feature_dropout=s.feature_dropout,
        attention=s.attention,
        attention_window=s.attention_window,
        skip_input=s.skip_input,
        label_weights=s.label_weights or not use_words,
        label_features=len(vocab) + 1 if use_words else 0,
        max_history=s.max_history,
    )
    model = DialogueStateTracker(config)
    if use_words:
        width = max(1, max(len(set(ws)) for ws in label_words))
        idx = torch.zeros(len(label_words), width, dtype=torch.long)
        val = torch.zeros(len(label_words), width)
        for a, ws in enumerate(label_words):
            unique = sorted({vocab[w] for w in ws})
            for j, i in enumerate(unique):
                idx[a, j], val[a, j] = i, 1.0 / len(unique)
        model.set_label_words(idx, val)
    return model


def _loss(
    model: DialogueStateTracker, batch: Tensors, trained: torch.Tensor
) -> tuple[torch.Tensor, int, int]:
    """Mean cross-entropy over the batch's targets, and (correct, total) targets."""
    logits, _, _ = model(batch.idx, batch.val)  # (B, T, A)
    B, T, A = logits.shape
    allowed = torch.cat([trained.expand(B, T, A), trained.new_ones(B, T, 1)], dim=-1)
    allowed = allowed.scatter(2, batch.denied, False)[..., :A]  # pads deny column A, cut off
    allowed = allowed.scatter(2, batch.targets.clamp(min=0).unsqueeze(-1), True)
    logp = masked_log_probs(logits, allowed)  # (B, T, A)
    loss = F.nll_loss(logp.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)
    has = batch.targets != IGNORE
    correct = int((logp.argmax(-1) == batch.targets)[has].sum())
    return loss, correct, int(has.sum())


def _fit(
    model: DialogueStateTracker,
    train: Tensors,
    val: Tensors | None,
    trained: torch.Tensor,
    s: LSTMSettings,
    rng: random.Random,
    show_progress: bool,
) -> int:
    """Train ``model``; the epochs it trained to the weights it keeps (the best held-out
    score's, with ``val``)."""
    # torch.optim.Adam's arithmetic (training.optim: torch.optim's classes import torch._dynamo).
    optimizer = Adam(model.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay)
    best: tuple[float, float] | None = None  # the best held-out score: its weights are kept
    reference: tuple[float, float] | None = None  # the score of the last progress (patience)
    best_weights: dict[str, torch.Tensor] | None = None
    waited, epochs, best_epoch = 0, 0, 0
    postfix: dict[str, str] = {}
    bar = tqdm(range(s.epochs), desc="LSTMPolicy", disable=not show_progress, leave=False)
    for _ in bar:
        epochs += 1
        model.train()
        total_loss, correct, total = 0.0, 0, 0
        for batch in train.batches(s.batch_size, rng):
            loss, c, n = _loss(model, batch, trained)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer_step(optimizer, "the LSTM policy", epochs, s.learning_rate)
            value = float(loss.detach())
            if not math.isfinite(value):
                bar.close()
                raise diverged("the LSTM policy", epochs, s.learning_rate)
            total_loss += value * n
            correct, total = correct + c, total + n
        postfix = {
            "loss": f"{total_loss / max(total, 1):.3f}",
            "acc": f"{correct / max(total, 1):.3f}",
        }
        if val is not None:
            score = _evaluate(model, val, trained)
            postfix["val_acc"] = f"{score[0]:.3f}"
            if reference is None or _progress(score, reference, s.min_delta):
                reference, waited = score, 0
            else:
                waited += 1
            if best is None or score > best:
                best, best_epoch = score, epochs
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            logger.debug(
                "LSTMPolicy: epoch %d: loss %s, accuracy %s, held-out accuracy %.4f, loss %.5f",
                epochs,
                postfix["loss"],
                postfix["acc"],
                score[0],
                -score[1],
            )
        bar.set_postfix(postfix)
        if val is not None and waited > 0 and waited >= s.patience:
            break  # (patience 0: at the first epoch without progress, as Keras's)
    bar.close()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    if not is_finite(model):
        raise diverged("the LSTM policy", epochs, s.learning_rate)
    model.eval()
    stopped = " (stopped early)" if epochs < s.epochs else ""
    held_out = f", best held-out accuracy {best[0]:.3f}" if best is not None else ""
    logger.info(
        "LSTMPolicy: %d epochs%s, loss %s, accuracy %s%s",
        epochs,
        stopped,
        postfix.get("loss"),
        postfix.get("acc"),
        held_out,
    )
    return best_epoch if best_weights is not None else epochs


def _progress(score: tuple[float, float], best: tuple[float, float], min_delta: float) -> bool:
    """Whether a held-out (accuracy, -loss) is progress over the last progress's: any higher
    accuracy, or at the same accuracy a loss at least ``min_delta`` lower (Keras's min_delta:
    a loss creeping towards 0 does not keep training going). The best weights are kept
    whether or not it is."""
    return score[0] > best[0] or (score[0] == best[0] and score[1] - best[1] >= min_delta)


def _evaluate(
    model: DialogueStateTracker, val: Tensors, trained: torch.Tensor
) -> tuple[float, float]:
    """(accuracy, -loss) on held-out sequences: higher is better."""
    model.eval()
    with torch.inference_mode():
        loss_sum, correct, total = 0.0, 0, 0
        for batch in val.batches(256, None):
            loss, c, n = _loss(model, batch, trained)
            loss_sum, correct, total = loss_sum + float(loss) * n, correct + c, total + n
    model.train()
    return correct / max(total, 1), -loss_sum / max(total, 1)
