"""Markers (Rasa's ``rasa evaluate markers``): points of interest in stored conversations.

A markers file maps marker names to conditions on the events of a conversation, combined with
operators::

    greeted_back:
      seq:
        - intent: greet
        - action: utter_greet
    gave_a_name:
      slot_was_set: name
    never_helped:
      never:
        - action: utter_did_that_help

Conditions: ``action``, ``intent`` (also a retrieval intent's full name), ``slot_was_set``
(holds from the event that sets the slot to a value until one clears it) and their negations
``not_action``, ``not_intent``, ``slot_was_not_set``. Operators over a list of markers: ``and``
(its negation ``at_least_one_not``), ``or``, ``not`` (one marker), ``seq`` (the markers apply in
this order, at events not necessarily next to each other; after it applies, it starts over),
``at_least_once`` (one marker; only the first event where it applies counts) and its negation
``never``. Each marker may carry a ``description``.

Each conversation is split into sessions (at ``action_session_start``); each session is read
event by event, and every event where a marker applies is a row of the output CSV: sender id,
session index, marker, event index (in the whole conversation) and the number of user messages
before it. Statistics (optional) are written as Rasa writes them: per session, and over all
sessions (how many sessions each marker applies in, and the count, mean, median, min and max of
the user messages before its events).

The semantics and the files follow Rasa 3's ``rasa.core.evaluation`` (negation included as its
tags say).
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_files
from chatbot.project.yaml_io import line_of, load_yaml

Event = dict[str, Any]

OPERATORS = {"and": "at_least_one_not", "or": None, "not": None, "seq": None}
OPERATORS["at_least_once"] = "never"
CONDITIONS = {"action": "not_action", "intent": "not_intent", "slot_was_set": "slot_was_not_set"}
NEGATED = {neg: tag for tag, neg in {**OPERATORS, **CONDITIONS}.items() if neg is not None}
TAGS = {*OPERATORS, *CONDITIONS, *NEGATED}
ONE_MARKER = ("not", "at_least_once")


class Marker:
    """A marker's state over one session: whether it applied at each event so far."""

    tag = ""

    def __init__(self, negated: bool = False, name: str | None = None) -> None:
        self.negated = negated
        self.name = name
        self.history: list[bool] = []

    def track(self, event: Event) -> None:
        applies = self._applies(event)
        self.history.append(not applies if self.negated else applies)

    def _applies(self, event: Event) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        self.history = []

    def relevant_events(self) -> list[int]:
        return [i for i, applies in enumerate(self.history) if applies]

    def flatten(self) -> Iterator[Marker]:
        yield self

    def __str__(self) -> str:
        return self.name or self.describe()

    def describe(self) -> str:
        raise NotImplementedError


class Operator(Marker):
    def __init__(self, markers: list[Marker], negated: bool = False) -> None:
        super().__init__(negated)
        self.markers = markers

    def track(self, event: Event) -> None:
        for marker in self.markers:
            marker.track(event)
        super().track(event)

    def reset(self) -> None:
        for marker in self.markers:
            marker.reset()
        super().reset()

    def flatten(self) -> Iterator[Marker]:
        for marker in self.markers:
            yield from marker.flatten()
        yield self

    def describe(self) -> str:
        tag = OPERATORS[self.tag] if self.negated else self.tag
        return f"{tag}({', '.join(str(m) for m in self.markers)})"


class And(Operator):
    tag = "and"

    def _applies(self, event: Event) -> bool:
        return all(m.history[-1] for m in self.markers)


class Or(Operator):
    tag = "or"

    def _applies(self, event: Event) -> bool:
        return any(m.history[-1] for m in self.markers)


class Not(Operator):
    tag = "not"

    def _applies(self, event: Event) -> bool:
        return not self.markers[0].history[-1]


class Seq(Operator):
    """The markers apply one after the other (at any later events); then it starts over."""

    tag = "seq"

    def __init__(self, markers: list[Marker], negated: bool = False) -> None:
        super().__init__(markers, negated)
        self._progress = 0

    def reset(self) -> None:
        super().reset()
        self._progress = 0

    def _applies(self, event: Event) -> bool:
        if self.markers[self._progress].history[-1]:
            self._progress += 1
        if self._progress == len(self.markers):
            self._progress = 0
            return True
        return False


class AtLeastOnce(Operator):
    """Applies from the first event where its marker applies on; only that event counts."""

    tag = "at_least_once"

    def _applies(self, event: Event) -> bool:
        before = False
        if self.history:
            before = not self.history[-1] if self.negated else self.history[-1]
        return before or self.markers[0].history[-1]

    def relevant_events(self) -> list[int]:
        return [self.history.index(True)] if True in self.history else []


class Condition(Marker):
    def __init__(self, text: str, negated: bool = False) -> None:
        super().__init__(negated)
        self.text = text

    def describe(self) -> str:
        tag = CONDITIONS[self.tag] if self.negated else self.tag
        return f"({tag}: {self.text})"


class ActionMarker(Condition):
    tag = "action"

    def _applies(self, event: Event) -> bool:
        return event.get("event") == "action" and event.get("name") == self.text


class IntentMarker(Condition):
    tag = "intent"

    def _applies(self, event: Event) -> bool:
        if event.get("event") != "user":
            return False
        parse = event.get("parse_data") or {}
        intent = (parse.get("intent") or {}).get("name")
        return self.text in (intent, _full_retrieval_intent(parse, intent))


class SlotSetMarker(Condition):
    """Holds while the slot has a value (set by an earlier event, or this one)."""

    tag = "slot_was_set"

    def _applies(self, event: Event) -> bool:
        if event.get("event") == "slot" and event.get("name") == self.text:
            return event.get("value") is not None
        if self.history:
            return not self.history[-1] if self.negated else self.history[-1]
        return False


def _full_retrieval_intent(parse: dict[str, Any], intent: Any) -> str | None:
    selector = parse.get("response_selector") or {}
    chosen = selector.get(intent) if isinstance(selector, dict) else None
    response = chosen.get("response") if isinstance(chosen, dict) else None
    key = response.get("intent_response_key") if isinstance(response, dict) else None
    return key if isinstance(key, str) else None


_OPERATOR_CLASSES: dict[str, type[Operator]] = {
    "and": And,
    "or": Or,
    "not": Not,
    "seq": Seq,
    "at_least_once": AtLeastOnce,
}
_CONDITION_CLASSES: dict[str, type[Condition]] = {
    "action": ActionMarker,
    "intent": IntentMarker,
    "slot_was_set": SlotSetMarker,
}


# -- reading markers files ------------------------------------------------------------------------


def load_markers(path: Path) -> list[Marker]:
    """Every marker of a markers file, or of the YAML files under a folder (names unique)."""
    files = domain_files(path)  # the file, or the YAML files under the folder (as a domain's)
    if not files:
        raise ProjectError(f"no markers file (.yml) in {path}", file=str(path))
    markers: list[Marker] = []
    seen: dict[str, str] = {}
    for file in files:
        content = load_yaml(file)
        if not isinstance(content, dict) or not content:
            raise ProjectError(
                "a markers file maps marker names to their conditions", file=str(file)
            )
        for name, config in content.items():
            where = (str(file), line_of(content, name))
            if not isinstance(name, str) or not name.strip():
                raise ProjectError(f"a marker's name must be a text, not {name!r}", *where)
            if name in TAGS:
                raise ProjectError(
                    f"'{name}' is a condition or operator, not a marker's name: "
                    "the top level holds the names of your markers",
                    *where,
                )
            if name in seen:
                raise ProjectError(f"marker '{name}' is defined twice ({seen[name]})", *where)
            seen[name] = f"{file}:{where[1]}"
            marker = _marker(config, where, name)
            marker.name = name
            markers.append(marker)
    return markers


def _marker(config: Any, where: tuple[str, int | None], name: str) -> Marker:
    file, line = where
    if not isinstance(config, dict):
        raise ProjectError(
            f"marker '{name}': a condition or operator with its value, such as "
            "'intent: greet' or 'seq: [...]', not {config!r}",
            file,
            line,
        )
    keys = [k for k in config if k != "description"]
    if len(keys) != 1:
        raise ProjectError(
            f"marker '{name}': one condition or operator per marker (and a 'description'), "
            f"found {keys or 'none'}",
            file,
            line_of(config) or line,
        )
    tag = keys[0]
    at = line_of(config, tag) or line
    if tag not in TAGS:
        known = ", ".join(sorted(TAGS))
        raise ProjectError(f"marker '{name}': unknown '{tag}'; known: {known}", file, at)
    negated = tag in NEGATED
    positive = NEGATED.get(tag, tag)
    value = config[tag]
    condition = _CONDITION_CLASSES.get(positive)
    if condition is not None:
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(f"marker '{name}': '{tag}' takes a name, not {value!r}", file, at)
        return condition(value.strip(), negated)
    if not isinstance(value, list) or not value:
        raise ProjectError(f"marker '{name}': '{tag}' takes a list of markers", file, at)
    if positive in ONE_MARKER and len(value) != 1:
        raise ProjectError(
            f"marker '{name}': '{tag}' takes exactly one marker, found {len(value)}", file, at
        )
    subs = [_marker(item, (file, line_of(value, i) or at), name) for i, item in enumerate(value)]
    return _OPERATOR_CLASSES[positive](subs, negated)


def domain_problems(markers: Sequence[Marker], domain: Domain) -> list[str]:
    """The intents, actions and slots the markers name that the domain lacks."""
    problems = []
    for top in markers:
        for marker in top.flatten():
            if isinstance(marker, IntentMarker) and marker.text not in domain.intent_names:
                problems.append(f"marker '{top.name}': no intent '{marker.text}' in the domain")
            elif isinstance(marker, ActionMarker) and marker.text not in domain.action_names:
                problems.append(f"marker '{top.name}': no action '{marker.text}' in the domain")
            elif isinstance(marker, SlotSetMarker) and marker.text not in domain.slots:
                problems.append(f"marker '{top.name}': no slot '{marker.text}' in the domain")
    return problems


# -- evaluating ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """One event where a marker applies."""

    event_idx: int
    preceding_user_turns: int


SessionResult = dict[str, list[Applied]]


def split_sessions(events: Sequence[Event]) -> list[tuple[list[Event], int]]:
    """(session events, index of its first event) at each ``action_session_start``."""
    starts = [
        i
        for i, e in enumerate(events)
        if e.get("event") == "action" and e.get("name") == "action_session_start"
    ]
    if not starts:
        return [(list(events), 0)]
    bounds = [*starts, len(events)]
    return [(list(events[a:b]), a) for a, b in itertools.pairwise(bounds)]


def evaluate(markers: Sequence[Marker], events: Sequence[Event]) -> list[SessionResult]:
    """For each session of a conversation, each marker's events where it applies."""
    results = []
    for session, offset in split_sessions(events):
        for marker in markers:
            marker.reset()
        preceding: list[int] = []
        user_turns = 0
        for event in session:
            preceding.append(user_turns)
            for marker in markers:
                marker.track(event)
            user_turns += event.get("event") == "user"
        results.append(
            {
                str(marker): [Applied(offset + i, preceding[i]) for i in marker.relevant_events()]
                for marker in markers
            }
        )
    return results


@dataclass
class MarkerStatistics:
    """Rasa's marker statistics, per session and over all sessions."""

    names: list[str]
    sessions: list[tuple[str, int]] = field(default_factory=list)
    per_session: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    collected: dict[str, list[int]] = field(default_factory=dict)
    applied_sessions: dict[str, int] = field(default_factory=dict)

    def process(self, sender_id: str, session_idx: int, result: SessionResult) -> None:
        self.sessions.append((sender_id, session_idx))
        for name in self.names:
            turns = [a.preceding_user_turns for a in result.get(name, [])]
            self.per_session.setdefault(name, []).append(_statistics(turns))
            self.collected.setdefault(name, []).extend(turns)
            self.applied_sessions[name] = self.applied_sessions.get(name, 0) + bool(turns)

    def overall_rows(self) -> Iterator[list[str]]:
        n = len(self.sessions)
        yield _row("all", math.nan, "-", "total_number_of_sessions", n)
        for name in self.names:
            count = self.applied_sessions.get(name, 0)
            yield _row("all", math.nan, name, _APPLIED, count)
            yield _row("all", math.nan, name, _APPLIED_SHARE, count / n * 100 if n else 100.0)
        for name in self.names:
            for stat, value in _statistics(self.collected.get(name, [])).items():
                yield _row("all", math.nan, name, _turns(stat), value)

    def session_rows(self) -> Iterator[list[str]]:
        for name in self.names:
            for stat in _STATS:
                for (sender_id, session_idx), values in zip(
                    self.sessions, self.per_session.get(name, []), strict=True
                ):
                    yield _row(sender_id, session_idx, name, _turns(stat), values[stat])


_APPLIED = "number_of_sessions_where_marker_applied_at_least_once"
_APPLIED_SHARE = "percentage_of_sessions_where_marker_applied_at_least_once"
_STATS = ("count", "max", "mean", "median", "min")  # Rasa's order (sorted names)


def _turns(stat: str) -> str:
    return f"{stat}(number of preceding user turns)"


def _statistics(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0, "mean": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {
        "count": len(values),
        "mean": statistics.fmean(values),
        "median": float(statistics.median(values)),
        "min": min(values),
        "max": max(values),
    }


def _row(sender: str, session: float, marker: str, stat: str, value: float) -> list[str]:
    if isinstance(value, int):
        shown = str(value)
    elif math.isnan(value):
        shown = "nan"
    else:
        shown = str(round(value, 3))
    return [sender, "nan" if isinstance(session, float) else str(session), marker, stat, shown]


def write_results(path: Path, results: dict[str, list[SessionResult]]) -> int:
    """The output CSV; returns the number of rows (events where a marker applies)."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["sender_id", "session_idx", "marker", "event_idx", "num_preceding_user_turns"]
        )
        for sender_id, sessions in results.items():
            for session_idx, result in enumerate(sessions):
                for name, applied in result.items():
                    for a in applied:
                        writer.writerow(
                            [sender_id, session_idx, name, a.event_idx, a.preceding_user_turns]
                        )
                        rows += 1
    return rows


def write_statistics(
    results: dict[str, list[SessionResult]], names: list[str], overall: Path, per_session: Path
) -> None:
    stats = MarkerStatistics(sorted(names))
    for sender_id, sessions in results.items():
        for session_idx, result in enumerate(sessions):
            stats.process(sender_id, session_idx, result)
    header = ["sender_id", "session_idx", "marker", "statistic", "value"]
    for path, rows in ((overall, stats.overall_rows()), (per_session, stats.session_rows())):
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
