"""Stories with checkpoints and ``or`` resolved into flat step sequences.

A story is cut into segments at its checkpoints: leading checkpoints say where a segment may start
(none: at the start of a conversation), checkpoints after steps say where it continues. Every path
from a start through connected segments to a segment without exits is one flat story; ``or``
steps multiply paths by their alternatives. Loops through checkpoints are followed at most twice
per path; where there are too many paths to list, a seeded sample of them is taken.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

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


def resolve(
    stories: list[Story], *, max_paths: int = 20000, max_visits: int = 200_000, seed: int = 42
) -> list[FlatStory]:
    """Every path through the stories' graph; where listing them all would take more than
    ``max_visits`` segment visits or give more than ``max_paths`` paths (checkpoints that loop
    through many stories, which may follow each other in any order: (2K)!/2^K orders for K of
    them), a seeded sample of paths instead, as Rasa's training data generator samples its
    trackers. A path whose every continuation was followed its bounded number of times ends
    there (as Rasa keeps a tracker that ends at a checkpoint), so a loop without an exit still
    gives its stories to learn from."""
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
    graph = _Graph(by_start)
    listed = graph.every_path(max_paths, max_visits)
    if listed is not None:
        return listed
    count = min(max_paths, 50 * len(segments) + 100)
    sampled = graph.sample(count, random.Random(seed))
    logger.info(
        "the stories' checkpoints and 'or' steps give too many paths to list (more than %d, "
        "or %d steps of listing): training takes %d of them, chosen at random (seed %d)",
        max_paths,
        max_visits,
        len(sampled),
        seed,
    )
    return sampled


class _Graph:
    """The segments by the checkpoint they start at, walked from the conversation's start."""

    def __init__(self, by_start: dict[str, list[Segment]]) -> None:
        self.by_start = by_start

    def _nexts(self, seg: Segment, visits: dict[int, int]) -> list[Segment]:
        """The segments ``seg`` continues with that a path may still enter."""
        return [
            n
            for e in seg.exits
            for n in self.by_start.get(e, [])
            if visits.get(id(n), 0) < MAX_SEGMENT_VISITS
        ]

    def every_path(self, max_paths: int, max_visits: int) -> list[FlatStory] | None:
        """All paths, or None where there are more than ``max_paths`` or listing them takes
        more than ``max_visits`` segment visits."""
        results: list[FlatStory] = []
        budget = [max_visits]

        def walk(
            seg: Segment, prefix: tuple[Step, ...], names: tuple[str, ...], visits: dict[int, int]
        ) -> bool:
            budget[0] -= 1
            if budget[0] < 0 or len(results) > max_paths:
                return False
            visits = {**visits, id(seg): visits.get(id(seg), 0) + 1}
            names = names if names and names[-1] == seg.story.name else (*names, seg.story.name)
            nexts = self._nexts(seg, visits)
            for variant in expand_or(seg.steps, max_paths + 1):
                steps = prefix + variant
                if not nexts:
                    results.append(FlatStory(" > ".join(names), steps, seg.story))
                for nxt in nexts:
                    if not walk(nxt, steps, names, visits):
                        return False
            return True

        for seg in self.by_start.get(START, []):
            if not walk(seg, (), (), {}):
                return None
        return results

    def sample(self, count: int, rng: random.Random) -> list[FlatStory]:
        """``count`` random walks from the start (each segment at most MAX_SEGMENT_VISITS
        times a walk, each ``or`` step one alternative), without repeats."""
        starts = self.by_start.get(START, [])
        seen: set[tuple[int, ...]] = set()
        results: list[FlatStory] = []
        for _ in range(count if starts else 0):
            seg = rng.choice(starts)
            steps: tuple[Step, ...] = ()
            names: tuple[str, ...] = ()
            visits: dict[int, int] = {}
            while True:
                visits[id(seg)] = visits.get(id(seg), 0) + 1
                if not names or names[-1] != seg.story.name:
                    names = (*names, seg.story.name)
                steps += tuple(
                    rng.choice(step.alternatives) if isinstance(step, OrStep) else step
                    for step in seg.steps
                )
                nexts = self._nexts(seg, visits)
                if not nexts:
                    break
                seg = rng.choice(nexts)
            key = tuple(id(step) for step in steps)
            if key not in seen:
                seen.add(key)
                results.append(FlatStory(" > ".join(names), steps, seg.story))
        return results
