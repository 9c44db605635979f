"""Stories with checkpoints and ``or`` resolved into flat step sequences.

A story is cut into segments at its checkpoints: leading checkpoints say where a segment may start
(none: at the start of a conversation), checkpoints after steps say where it continues. Every path
from a start through connected segments to a segment without exits is one flat story; ``or``
steps multiply paths by their alternatives. Loops through checkpoints are followed at most twice
per path and the number of paths is bounded, so a cyclic graph terminates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatbot.errors import TrainingError
from chatbot.project.stories import CheckpointStep, OrStep, Step, Story

logger = logging.getLogger(__name__)

START = "__start__"
MAX_SEGMENT_VISITS = 2


@dataclass(frozen=True)
class Segment:
    story: Story
    starts: tuple[str, ...]
    steps: tuple[Step, ...]
    exits: tuple[str, ...]


@dataclass(frozen=True)
class FlatStory:
    """One path through the story graph: plain steps (no checkpoints, no ``or``)."""

    name: str
    steps: tuple[Step, ...]
    source: Story  # the first story of the path (for messages)


def segments_of(story: Story) -> list[Segment]:
    segments: list[Segment] = []
    starts: list[str] = []
    steps: list[Step] = []
    exits: list[str] = []
    for step in story.steps:
        if isinstance(step, CheckpointStep):
            if steps or exits:
                exits.append(step.name)
            else:
                starts.append(step.name)
            continue
        if exits:
            segments.append(Segment(story, tuple(starts or [START]), tuple(steps), tuple(exits)))
            starts, steps, exits = list(exits), [], []
        steps.append(step)
    segments.append(Segment(story, tuple(starts or [START]), tuple(steps), tuple(exits)))
    return segments


def expand_or(steps: tuple[Step, ...], limit: int) -> list[tuple[Step, ...]]:
    """Every combination of the alternatives of ``or`` steps (at most ``limit``)."""
    paths: list[tuple[Step, ...]] = [()]
    for step in steps:
        if isinstance(step, OrStep):
            paths = [(*p, alt) for p in paths for alt in step.alternatives][:limit]
        else:
            paths = [(*p, step) for p in paths]
    return paths


def resolve(stories: list[Story], *, max_paths: int = 20000) -> list[FlatStory]:
    segments = [seg for story in stories for seg in segments_of(story)]
    by_start: dict[str, list[Segment]] = {}
    for seg in segments:
        for name in seg.starts:
            by_start.setdefault(name, []).append(seg)
    exits = {name for seg in segments for name in seg.exits}
    for name in sorted(set(by_start) - exits - {START}):
        first = by_start[name][0].story
        logger.warning(
            "checkpoint '%s' (story %s) is never reached by another story", name, first.where
        )
    for name in sorted(exits - set(by_start)):
        logger.warning("checkpoint '%s' is not continued by any story", name)

    results: list[FlatStory] = []

    def walk(
        seg: Segment, prefix: tuple[Step, ...], names: tuple[str, ...], visits: dict[int, int]
    ) -> None:
        if len(results) >= max_paths:
            return
        count = visits.get(id(seg), 0)
        if count >= MAX_SEGMENT_VISITS:
            return
        visits = {**visits, id(seg): count + 1}
        names = names if names and names[-1] == seg.story.name else (*names, seg.story.name)
        for variant in expand_or(seg.steps, max_paths):
            steps = prefix + variant
            nexts = [n for e in seg.exits for n in by_start.get(e, [])]
            if not nexts:
                results.append(FlatStory(" > ".join(names), steps, seg.story))
                if len(results) >= max_paths:
                    return
                continue
            for nxt in nexts:
                walk(nxt, steps, names, visits)

    for seg in by_start.get(START, []):
        walk(seg, (), (), {})
    if len(results) >= max_paths:
        raise TrainingError(
            f"the stories' checkpoints and 'or' steps produce more than {max_paths} paths; "
            "split the stories or use fewer alternatives"
        )
    return results
