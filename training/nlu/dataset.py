"""Training examples as arrays, and batches of them with their targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from chatbot.nlu.features import Encoded, Featurizer
from chatbot.nlu.model import Labels
from chatbot.nlu.network import Batch, collate
from chatbot.nlu.tags import OUTSIDE, covered_tokens, span_tags, tag_names
from chatbot.nlu.tokenizer import tokenize
from chatbot.project.training_data import NLUExample

IGNORE = -100  # cross-entropy's ignore_index


@dataclass
class Sample:
    encoded: Encoded
    intent: int
    tags: np.ndarray  # (T,) tag ids
    roles: np.ndarray  # (T,) role ids; IGNORE outside entities
    groups: np.ndarray  # (T,)
    response: int  # index into labels.response_keys, IGNORE for other intents


@dataclass
class Targets:
    intents: torch.Tensor  # (B,)
    tags: torch.Tensor  # (B, T)
    roles: torch.Tensor  # (B, T)
    groups: torch.Tensor  # (B, T)
    responses: torch.Tensor  # (B,)
    response_mask: torch.Tensor  # (B, R) bool: the keys of each example's retrieval intent


def encode_samples(
    examples: Sequence[NLUExample],
    featurizer: Featurizer,
    labels: Labels,
    max_tokens: int,
    scheme: str = "bilou",
) -> list[Sample]:
    intent_ids = {name: i for i, name in enumerate(labels.intents)}
    tag_ids = {name: i for i, name in enumerate(tag_names(labels.entity_types, scheme))}
    role_ids = {name: i for i, name in enumerate(labels.roles)}
    group_ids = {name: i for i, name in enumerate(labels.groups)}
    response_ids = {name: i for i, name in enumerate(labels.response_keys)}
    known = set(labels.entity_types)
    samples = []
    for example in examples:
        tokens = tokenize(example.text)[:max_tokens]
        if not tokens:
            continue
        entities = [a for a in example.entities if a.entity in known]
        spans = [(a.start, a.end, a.entity) for a in entities]
        tags = span_tags(tokens, spans, text=example.text, scheme=scheme)
        roles = np.full(len(tokens), IGNORE, np.int64)
        groups = np.full(len(tokens), IGNORE, np.int64)
        for a in entities:
            for i in covered_tokens(tokens, a.start, a.end):
                roles[i] = role_ids[a.role or ""]
                groups[i] = group_ids[a.group or ""]
        for i, tag in enumerate(tags):  # tokens outside entities learn "no role" too
            if tag == OUTSIDE:
                roles[i] = groups[i] = 0
        samples.append(
            Sample(
                featurizer.encode(example.text, tokens),
                intent_ids[example.base_intent],
                np.array([tag_ids[t] for t in tags], np.int64),
                roles,
                groups,
                response_ids.get(example.intent, IGNORE),
            )
        )
    return samples


def make_batch(samples: Sequence[Sample], labels: Labels) -> tuple[Batch, Targets]:
    batch = collate([s.encoded for s in samples])
    b, t = batch.words.shape
    tags = np.zeros((b, t), np.int64)
    roles = np.full((b, t), IGNORE, np.int64)
    groups = np.full((b, t), IGNORE, np.int64)
    for i, s in enumerate(samples):
        n = len(s.tags)
        tags[i, :n], roles[i, :n], groups[i, :n] = s.tags, s.roles, s.groups
    keys = labels.response_keys
    mask = np.zeros((b, max(len(keys), 1)), bool)
    for i, s in enumerate(samples):
        if s.response != IGNORE:
            prefix = keys[s.response].split("/", 1)[0] + "/"
            mask[i, : len(keys)] = [k.startswith(prefix) for k in keys]
    targets = Targets(
        torch.tensor([s.intent for s in samples]),
        torch.from_numpy(tags),
        torch.from_numpy(roles),
        torch.from_numpy(groups),
        torch.tensor([s.response for s in samples]),
        torch.from_numpy(mask),
    )
    return batch, targets


def batches(
    samples: Sequence[Sample], batch_size: int, rng: np.random.Generator
) -> list[list[int]]:
    """Shuffled batches of similar lengths: sort within chunks of 20 batches, shuffle batches."""
    order = rng.permutation(len(samples))
    chunk = batch_size * 20
    result: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(samples[i].tags))
        result.extend(
            [int(i) for i in part[j : j + batch_size]] for j in range(0, len(part), batch_size)
        )
    return [result[i] for i in rng.permutation(len(result))]
