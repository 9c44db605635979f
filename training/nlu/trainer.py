"""``train_nlu``: NLU data and a pipeline in, a trained ``NLUModel`` out; seeded, reproducible."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from chatbot.errors import TrainingError
from chatbot.nlu.features import Featurizer
from chatbot.nlu.model import Labels, NLUModel
from chatbot.nlu.network import Batch, JointNet, Outputs, build_net
from chatbot.nlu.runtime import EnsembleRuntime, JointRuntime
from chatbot.nlu.settings import NetSizes, NLUSettings
from chatbot.nlu.tags import OUTSIDE, SCHEMES, tag_names
from chatbot.project.config import ComponentConfig
from chatbot.project.training_data import NLUData, NLUExample
from training.divergence import diverged, is_finite, optimizer_step
from training.nlu.custom import train_components
from training.nlu.dataset import IGNORE, Sample, Targets, batches, encode_samples, make_batch
from training.nlu.language_model import LanguageModelHeads
from training.nlu.ngram_model import fit_tfidf_intents
from training.nlu.pipeline import settings_from_pipeline
from training.nlu.vocab import collect_synonyms, fit_featurizer, fit_labels
from training.optim import Adam

logger = logging.getLogger(__name__)

UNK = 1
SMALL_DATA = 2000  # examples; below this batches of 16, from it batches of 64


def train_nlu(
    data: NLUData,
    pipeline: Sequence[ComponentConfig],
    *,
    seed: int = 42,
    show_progress: bool = True,
    eval_data: Sequence[NLUExample] | None = None,
) -> NLUModel:
    """Train the joint intent and entity model that ``pipeline`` describes on ``data``.

    ``eval_data``: held-out examples (a validation set) to score the model on while it trains
    (``checkpoint_model`` keeps the best-scoring weights); without it, the settings'
    ``evaluate_on_number_of_examples`` are held out of ``data``."""
    settings = settings_from_pipeline(pipeline)
    examples = [e for e in data.examples if e.text.strip()]
    if not examples:
        raise TrainingError("no NLU training examples: add some to nlu.yml")
    held_out = [e for e in eval_data or () if e.text.strip()]
    if not held_out and settings.evaluate_on_number_of_examples:
        examples, held_out = _hold_out(examples, settings.evaluate_on_number_of_examples, seed)
    if settings.checkpoint_model and not held_out:
        logger.warning(
            "checkpoint_model needs held-out examples (evaluate_on_number_of_examples > 0): "
            "the last weights are kept"
        )
    labels = fit_labels(examples, settings)
    featurizer = fit_featurizer(examples, data, settings)
    samples = encode_samples(examples, featurizer, labels, settings.max_tokens, settings.tag_scheme)
    if not samples:
        raise TrainingError("no NLU training example has a word in it")
    settings = for_data(settings, len(samples), len(labels.intents))
    tagger = settings.entity_recognition and bool(labels.entity_types)
    sizes = NetSizes(
        words=len(featurizer.words),
        chars=len(featurizer.chars),
        lexical=featurizer.n_lexical,
        patterns=featurizer.n_patterns,
        ngrams=len(featurizer.ngrams),
        intents=len(labels.intents),
        # Entity types are known either way (RegexEntityExtractor uses them); a tagger is optional.
        tags=len(tag_names(labels.entity_types, settings.tag_scheme)) if tagger else 0,
        roles=len(labels.roles) if tagger else 0,
        groups=len(labels.groups) if tagger else 0,
        responses=len(labels.response_keys),
    )
    began = time.perf_counter()
    # One intra-op thread: batches this small gain little from more, and lose several times over
    # when the cores are busy with anything else (OpenMP threads spin, waiting for each other).
    nets = []
    with torch.random.fork_rng(), _threads(1):  # leave the caller's state alone
        score = _scorer(held_out, settings, labels, featurizer) if held_out else None
        for member_seed in range(seed, seed + settings.ensemble_size):
            torch.manual_seed(member_seed)
            net = build_net(settings, sizes, labels.entity_types)
            names = featurizer.patterns.names if featurizer.n_patterns else ()
            _pattern_prior(net, labels, names, settings.tag_scheme)
            rng = np.random.default_rng(member_seed)
            _fit(net, samples, labels, settings, rng, show_progress, score)
            nets.append(net)
        if nets[0].ngram_tfidf is not None:
            _fit_ngram_model(nets, samples, settings)
    logger.info(
        "trained NLU (%d network%s) on %d examples (%d intents, %d entity types) in %.1f s",
        len(nets),
        "s" if len(nets) > 1 else "",
        len(samples),
        len(labels.intents),
        len(labels.entity_types),
        time.perf_counter() - began,
    )
    model: JointNet | EnsembleRuntime = nets[0]
    if len(nets) > 1:
        model = EnsembleRuntime([JointRuntime.from_net(net, settings) for net in nets])
    trained = NLUModel(settings, labels, featurizer, model, collect_synonyms(data, examples))
    trained.custom = train_components(pipeline, data)
    return trained


@contextmanager
def _threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


PATTERN_PRIOR = 2.0


def _pattern_prior(
    net: JointNet, labels: Labels, names: Sequence[str], scheme: str = "bilou"
) -> None:
    """Start the regex/lookup -> tag shortcut from what the names say: a match of the lookup
    table "city" is likely a city (Rasa names tables after entities for RegexEntityExtractor).
    Other patterns start at zero; training moves both."""
    if net.pattern_tags is None:
        return
    tags = {tag: i for i, tag in enumerate(tag_names(labels.entity_types, scheme))}
    with torch.no_grad():
        weight = net.pattern_tags.weight  # (tags, patterns)
        weight.zero_()
        for column, name in enumerate(names):
            if name in labels.entity_types:
                weight[tags[OUTSIDE], column] = -PATTERN_PRIOR
                for prefix in SCHEMES[scheme]:
                    weight[tags[f"{prefix}-{name}"], column] = PATTERN_PRIOR


# Below this many training examples per intent (on average) the n-gram model is the TF-IDF one
# with NGRAM_SHARE_SMALL of the intent probabilities, else the summed one with NGRAM_SHARE (where
# ``ngram_model`` is "auto" and ``ngram_intent_weight`` negative). Cross-validated on the Braun
# corpora's training splits only (docs/benchmarks.md, NLU, "A TF-IDF n-gram model for small
# data"): with 3 to 11 examples per intent the TF-IDF model at 0.9 or 1.0 (a tie) beats every
# lower share and the summed model at any share (the BiLSTM head alone is the weakest); with 40
# per intent the two models tie, and a quarter share is as good as any. On ATIS and HWU64
# validation the summed model is the better one. The summed model's own best share on small
# data was a half (NGRAM_SHARE_SMALL_SUM), where it is asked for.
SMALL_PER_INTENT = 20
NGRAM_SHARE_SMALL = 0.9
NGRAM_SHARE_SMALL_SUM = 0.5
NGRAM_SHARE = 0.25


def for_data(settings: NLUSettings, n: int, intents: int) -> NLUSettings:
    """``settings`` with what is left to the data chosen for ``n`` examples of ``intents``
    intents: the n-gram model where ``ngram_model`` is "auto", and its share where
    ``ngram_intent_weight`` is negative."""
    small = n < SMALL_PER_INTENT * max(intents, 1)
    model = settings.ngram_model
    if model == "auto":
        model = "tfidf" if small else "sum"
    share = settings.ngram_intent_weight
    if share < 0:
        share = NGRAM_SHARE
        if small:
            share = NGRAM_SHARE_SMALL if model == "tfidf" else NGRAM_SHARE_SMALL_SUM
    return dataclasses.replace(settings, ngram_model=model, ngram_intent_weight=share)


STEPS_PER_EXAMPLE = 3


def schedule(settings: NLUSettings, n: int) -> tuple[int, int]:
    """Batch size and epochs for ``n`` examples: as set, or chosen for about three optimiser steps
    an example, at least ``min_steps`` (a toy bot still learns) and at most ``target_steps`` (a
    big data set still trains in minutes)."""
    batch_size = settings.batch_size or (16 if n < SMALL_DATA else 64)
    if settings.epochs:
        return batch_size, settings.epochs
    steps = min(max(STEPS_PER_EXAMPLE * n, settings.min_steps), settings.target_steps)
    epochs = math.ceil(steps / math.ceil(n / batch_size))
    # max_epochs binds over min_epochs: DIETClassifier's epochs are our max_epochs, and a
    # config asking for 3 (a quick run) gets 3.
    return batch_size, min(settings.max_epochs, max(settings.min_epochs, epochs))


def _fit(
    net: JointNet,
    samples: Sequence[Sample],
    labels: Labels,
    settings: NLUSettings,
    rng: np.random.Generator,
    show_progress: bool,
    score: Callable[[JointNet], float] | None = None,
) -> None:
    batch_size, epochs = schedule(settings, len(samples))
    total = epochs * math.ceil(len(samples) / batch_size)
    # Built after the network, so that its initial weights are those it has without the heads.
    language_model = (
        LanguageModelHeads(settings.hidden, net.sizes.words)
        if settings.language_model > 0
        else None
    )
    parameters = list(net.parameters())
    if language_model is not None:
        parameters += list(language_model.parameters())
    # AdamW's arithmetic (training.optim: torch.optim's classes import torch._dynamo, 1.5 s).
    optimizer = Adam(
        parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay, decoupled=True
    )
    warmup = max(1, total // 30)

    def rate(step: int) -> float:  # linear warm-up, then cosine decay to 5 %
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    # The learning rate of step k (from 0) is learning_rate * rate(k), as torch's LambdaLR sets it.
    steps = 0
    optimizer.lr = settings.learning_rate * rate(steps)
    average = _Average(net, settings.ema_decay) if settings.ema_decay > 0 else None
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    net.train()
    bar = tqdm(range(epochs), desc="NLU", unit="epoch", disable=not show_progress, leave=False)
    for epoch in bar:
        losses = []
        for indices in batches(samples, batch_size, rng):
            batch, targets = make_batch([samples[i] for i in indices], labels)
            words = batch.words  # the language model's targets: every word, none dropped
            if settings.word_dropout > 0:
                batch = _drop_tokens(batch, settings.word_dropout)
            out = net(batch)
            loss = _loss(net, batch, targets, settings.label_smoothing, out)
            if language_model is not None and out.states is not None:
                loss = loss + settings.language_model * language_model.loss(
                    out.states, words, batch.lengths
                )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer_step(optimizer, "the NLU model", epoch + 1, settings.learning_rate)
            steps += 1
            optimizer.lr = settings.learning_rate * rate(steps)
            if average is not None:
                average.update(net)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                bar.close()
                raise diverged("the NLU model", epoch + 1, settings.learning_rate)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}")
        last = epoch + 1 == epochs
        if score is not None and (
            (epoch + 1) % settings.evaluate_every_number_of_epochs == 0 or last
        ):
            kept = _State(net, average)
            value = score(net)
            logger.info("NLU epoch %d: held-out score %.4f", epoch + 1, value)
            if settings.checkpoint_model and (best is None or value > best[0]):
                best = (value, epoch + 1, kept.weights())
            kept.restore()
    if average is not None:
        average.copy_to(net)
    if best is not None:
        logger.info("NLU: keeping the weights of epoch %d (held-out score %.4f)", best[1], best[0])
        net.load_state_dict(best[2])
    if not is_finite(net):
        raise diverged("the NLU model", epochs, settings.learning_rate)
    net.eval()


class _State:
    """The weights a held-out score is taken of (the average, where weights are averaged), and
    the training weights to go back to afterwards."""

    def __init__(self, net: nn.Module, average: _Average | None) -> None:
        self.net = net
        self.training = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if average is not None:
            average.copy_to(net)
        net.eval()

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def restore(self) -> None:
        self.net.load_state_dict(self.training)
        self.net.train()


def _scorer(
    examples: Sequence[NLUExample], settings: NLUSettings, labels: Labels, featurizer: Featurizer
) -> Callable[[JointNet], float]:
    """Intent accuracy plus entity F1 (exact type and span; 1 where neither side has one) of a
    network on held-out examples, parsed as the trained model parses (no fallback)."""
    plain = dataclasses.replace(settings, fallback_threshold=0.0, ambiguity_threshold=0.0)

    def score(net: JointNet) -> float:
        model = NLUModel(plain, labels, featurizer, net)
        right = found = gold = hits = 0
        for example in examples:
            parse = model.parse(example.text)
            right += parse["intent"]["name"] == example.intent
            truth = {(e.entity, e.start, e.end) for e in example.entities}
            guess = {(e["entity"], e["start"], e["end"]) for e in parse["entities"]}
            gold, found, hits = gold + len(truth), found + len(guess), hits + len(truth & guess)
        f1 = 2 * hits / (gold + found) if gold + found else 1.0
        return right / len(examples) + f1

    return score


def _hold_out(
    examples: list[NLUExample], count: int, seed: int
) -> tuple[list[NLUExample], list[NLUExample]]:
    """``count`` examples (at most half) drawn at random out of the training examples."""
    count = min(count, len(examples) // 2)
    chosen = set(np.random.default_rng(seed).permutation(len(examples))[:count].tolist())
    kept = [e for i, e in enumerate(examples) if i not in chosen]
    return kept, [e for i, e in enumerate(examples) if i in chosen]


class _Average:
    """An exponential moving average of a network's weights over the optimiser steps. Early on
    the decay is lower (``(1 + n) / (10 + n)`` after ``n`` steps), so the random start does not
    linger in the average."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.shadow = [p.detach().clone() for p in net.parameters()]

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in net.parameters()], 1 - decay)

    @torch.no_grad()
    def copy_to(self, net: nn.Module) -> None:
        for param, value in zip(net.parameters(), self.shadow, strict=True):
            param.copy_(value)


def _drop_tokens(batch: Batch, rate: float) -> Batch:
    """Replace a share of the words by the unknown word, and blank the characters of half of
    those: unseen words then look like trained ones, and what else tells what a token is (its
    context, its regex and lookup matches) learns to carry it."""
    drop = (torch.rand(batch.words.shape) < rate) & (batch.words > UNK)  # (B, T)
    blank = drop & (torch.rand(batch.words.shape) < 0.5)
    return batch._replace(
        words=batch.words.masked_fill(drop, UNK),
        chars=batch.chars.masked_fill(blank.unsqueeze(2), 0),
    )


def _fit_ngram_model(
    nets: Sequence[JointNet], samples: Sequence[Sample], settings: NLUSettings
) -> None:
    """Fit the TF-IDF n-gram model once and give it to every network (it does not depend on
    the seed)."""
    fitted = fit_tfidf_intents(
        [s.encoded.ngrams for s in samples],
        [s.intent for s in samples],
        nets[0].sizes.ngrams,
        nets[0].sizes.intents,
        settings.ngram_l2,
    )
    with torch.no_grad():
        for net in nets:
            assert net.ngram_intents is not None and net.ngram_tfidf is not None
            net.ngram_intents.weight.copy_(torch.from_numpy(fitted.weight))
            net.ngram_tfidf.idf.copy_(torch.from_numpy(fitted.idf))
            net.ngram_tfidf.bias.copy_(torch.from_numpy(fitted.bias))


def _loss(
    net: JointNet,
    batch: Batch,
    targets: Targets,
    smoothing: float = 0.0,
    out: Outputs | None = None,
) -> torch.Tensor:
    """The network's training loss on ``batch`` (``out``: its outputs, where already computed)."""
    if out is None:
        out = net(batch)
    loss = nn.functional.cross_entropy(
        out.intent_logits, targets.intents, label_smoothing=smoothing
    )
    # The older n-gram model is trained on its own loss, and mixed in at prediction time; the
    # TF-IDF one is fitted after the network.
    if out.ngram_logits is not None and net.ngram_tfidf is None:
        loss = loss + nn.functional.cross_entropy(
            out.ngram_logits, targets.intents, label_smoothing=smoothing
        )
    mask = torch.arange(batch.words.shape[1]).unsqueeze(0) < batch.lengths.unsqueeze(1)
    if out.token_intent_logits is not None:  # every token is trained to tell the intent
        loss = loss + nn.functional.cross_entropy(
            out.token_intent_logits[mask],
            targets.intents.repeat_interleave(batch.lengths),
            label_smoothing=smoothing,
        )
    if out.emissions is not None and net.crf is not None:
        loss = loss + net.crf.nll(out.emissions, targets.tags, mask).mean()
    for logits, gold in ((out.role_logits, targets.roles), (out.group_logits, targets.groups)):
        if logits is not None:
            loss = loss + nn.functional.cross_entropy(
                logits.flatten(0, 1), gold.flatten(), ignore_index=IGNORE
            )
    if out.response_logits is not None and bool((targets.responses != IGNORE).any()):
        logits = out.response_logits.masked_fill(~targets.response_mask, -1e4)
        loss = loss + nn.functional.cross_entropy(logits, targets.responses, ignore_index=IGNORE)
    return loss
