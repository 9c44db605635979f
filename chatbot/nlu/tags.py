"""Entity tags: entity spans on tokens and back, in one of three tagging schemes.

``bilou`` (the default, as Rasa's ``BILOU_flag: true``): ``U-city`` is a one-token entity;
``B-city I-city L-city`` a longer one; ``O`` is no entity. ``bio``: ``B-city`` begins an entity,
``I-city`` continues it (ATIS's and SNIPS's own scheme). ``io`` (Rasa's ``BILOU_flag: false``, whose
tags are bare entity names): every token of an entity is ``I-city``, so two entities of one type
side by side read as one. The CRF may only move between tags that make sense in the scheme (no
``I-x`` after ``O`` in ``bilou`` and ``bio``), so decoded sequences are always well formed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from chatbot.nlu.tokenizer import Token

logger = logging.getLogger(__name__)

OUTSIDE = "O"
SCHEMES: dict[str, tuple[str, ...]] = {
    "bilou": ("B", "I", "L", "U"),
    "bio": ("B", "I"),
    "io": ("I",),
}


def tag_names(entity_types: Sequence[str], scheme: str = "bilou") -> list[str]:
    return [OUTSIDE] + [f"{p}-{e}" for e in entity_types for p in SCHEMES[scheme]]


def covered_tokens(tokens: Sequence[Token], start: int, end: int) -> list[int]:
    """Indices of the tokens that overlap ``[start, end)``."""
    return [i for i, t in enumerate(tokens) if t.start < end and t.end > start]


def span_tags(
    tokens: Sequence[Token],
    spans: Sequence[tuple[int, int, str]],
    *,
    text: str = "",
    scheme: str = "bilou",
) -> list[str]:
    """The ``scheme``'s tags for labelled character spans ``(start, end, label)``.

    A span that cuts through a token takes the whole token (Rasa warns about these "misaligned"
    annotations too); a later span never overwrites an earlier one.
    """
    tags = _bilou_tags(tokens, spans, text)
    if scheme == "bilou":
        return tags
    prefix = (
        {"B": "B", "I": "I", "L": "I", "U": "B"} if scheme == "bio" else dict.fromkeys("BILU", "I")
    )
    return [t if t == OUTSIDE else prefix[t[0]] + t[1:] for t in tags]


def _bilou_tags(
    tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]], text: str
) -> list[str]:
    tags = [OUTSIDE] * len(tokens)
    for start, end, label in spans:
        covered = [i for i in covered_tokens(tokens, start, end) if tags[i] == OUTSIDE]
        if not covered:
            continue
        if tokens[covered[0]].start != start or tokens[covered[-1]].end != end:
            _warn_misaligned(label, text[start:end], tokens, covered, text)
        if len(covered) == 1:
            tags[covered[0]] = f"U-{label}"
            continue
        tags[covered[0]] = f"B-{label}"
        for i in covered[1:-1]:
            tags[i] = f"I-{label}"
        tags[covered[-1]] = f"L-{label}"
    return tags


_MISALIGNED_SAID: set[tuple[str, str]] = set()
_MISALIGNED_LISTED = 20  # a corpus full of them says so once, not a line per example


def _warn_misaligned(
    label: str, value: str, tokens: Sequence[Token], covered: list[int], text: str
) -> None:
    """Rasa's "Misaligned entity annotation" warning, once per example and entity in a process:
    the annotation cuts through a word (Thai or Korean text without spaces, a particle written
    on), so the whole word is learned as the entity."""
    if (text, label) in _MISALIGNED_SAID or len(_MISALIGNED_SAID) > _MISALIGNED_LISTED:
        return
    _MISALIGNED_SAID.add((text, label))
    if len(_MISALIGNED_SAID) > _MISALIGNED_LISTED:
        logger.warning("more misaligned entity annotations are not listed")
        return
    words = text[tokens[covered[0]].start : tokens[covered[-1]].end]
    logger.warning(
        "misaligned entity annotation in %r: %s %r cuts through the word(s) %r, which are "
        "learned as the entity; annotate whole words (the tokenizer splits at spaces and "
        "punctuation, and Chinese and Japanese text at each character)",
        text[:200],
        label,
        value,
        words,
    )


def tag_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Token spans ``(first, last_exclusive, label)`` from tags of any scheme, tolerantly."""
    spans: list[tuple[int, int, str]] = []
    open_start: int | None = None
    open_label = ""
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if open_start is not None and (prefix in ("B", "U", OUTSIDE) or label != open_label):
            spans.append((open_start, i, open_label))
            open_start = None
        if prefix == "U":
            spans.append((i, i + 1, label))
        elif prefix in ("B", "I") and open_start is None:
            open_start, open_label = i, label
        elif prefix == "L":
            if open_start is None:
                spans.append((i, i + 1, label))
            else:
                spans.append((open_start, i + 1, label))
                open_start = None
    if open_start is not None:
        spans.append((open_start, len(tags), open_label))
    return spans


def allowed_transitions(
    tags: Sequence[str], scheme: str = "bilou"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks: ``[from, to]`` transitions, and the tags allowed first and last, for the
    ``scheme``'s tags (``tag_names``)."""
    parts = [t.partition("-") for t in tags]
    k = len(tags)
    allowed = np.zeros((k, k), bool)
    # The tags an entity or nothing may start with, and whether one may go on after a tag.
    starts = {"bilou": (OUTSIDE, "B", "U"), "bio": (OUTSIDE, "B"), "io": (OUTSIDE, "I")}[scheme]
    for i, (p1, _, l1) in enumerate(parts):
        for j, (p2, _, l2) in enumerate(parts):
            if scheme == "bilou" and p1 in ("B", "I"):  # an entity must go on to its L
                allowed[i, j] = p2 in ("I", "L") and l1 == l2
            elif scheme == "bio" and p1 in ("B", "I"):  # it may go on, or something else start
                allowed[i, j] = p2 in starts or (p2 == "I" and l1 == l2)
            else:  # after O (L or U in bilou; anything in io) a new entity or nothing may start
                allowed[i, j] = p2 in starts
    first = np.array([p in starts for p, _, _ in parts])
    ends = (OUTSIDE, "L", "U") if scheme == "bilou" else (OUTSIDE, "B", "I")
    last = np.array([p in ends for p, _, _ in parts])
    return allowed, first, last
