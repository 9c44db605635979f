"""Markers (Rasa's ``rasa evaluate markers``): where each condition and operator applies in a
session, read from a markers file whose mistakes name the file and line, and the command over
the stored conversations with its CSV and statistics."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest

from chatbot.agent import Agent
from chatbot.errors import ProjectError
from chatbot.store import SQLStore
from tests.helpers import dialogue_model
from tests.test_cli import chatbot
from training.markers import evaluate, load_markers


def user(intent: str) -> dict[str, Any]:
    return {"event": "user", "text": intent, "parse_data": {"intent": {"name": intent}}}


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


SESSION = [
    action("action_session_start"),  # 0
    action("action_listen"),  # 1
    user("greet"),  # 2
    slot("name", "Ann"),  # 3
    action("utter_greet"),  # 4
    action("action_listen"),  # 5
    user("mood_unhappy"),  # 6
    action("utter_cheer_up"),  # 7
    action("action_listen"),  # 8
    user("greet"),  # 9
    slot("name", None),  # 10
    action("utter_greet"),  # 11
]


def applied(tmp_path: Path, config: str, events: list[dict[str, Any]] = SESSION) -> list[int]:
    (tmp_path / "markers.yml").write_text(config)
    markers = load_markers(tmp_path / "markers.yml")
    (session,) = evaluate(markers, events)
    return [a.event_idx for a in session["m"]]


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ("m: {intent: greet}", [2, 9]),
        ("m: {not_intent: greet}", [i for i in range(12) if i not in (2, 9)]),
        ("m: {action: utter_greet}", [4, 11]),
        ("m: {slot_was_set: name}", [3, 4, 5, 6, 7, 8, 9]),  # from 3 until it is cleared at 10
        ("m: {slot_was_not_set: name}", [0, 1, 2, 10, 11]),
        # Not next to each other: greet (2), then utter_cheer_up (7); then it starts over.
        ("m: {seq: [{intent: greet}, {action: utter_cheer_up}]}", [7]),
        ("m: {seq: [{intent: greet}, {action: utter_greet}]}", [4, 11]),
        ("m: {at_least_once: [{action: utter_greet}]}", [4]),  # the first time only
        ("m: {never: [{action: utter_happy}]}", [0]),
        ("m: {never: [{action: utter_greet}]}", [0]),  # Rasa's: the first event it holds at
        ("m: {and: [{intent: greet}, {slot_was_not_set: name}]}", [2]),
        ("m: {or: [{intent: mood_unhappy}, {action: utter_cheer_up}]}", [6, 7]),
        ("m: {not: [{slot_was_set: name}]}", [0, 1, 2, 10, 11]),
        (
            "m: {at_least_one_not: [{slot_was_set: name}, {action: action_listen}]}",
            [0, 1, 2, 3, 4, 6, 7, 9, 10, 11],  # both hold only at 5 and 8
        ),
        ("m:\n  description: greeted\n  intent: greet", [2, 9]),
    ],
)
def test_where_each_marker_applies(tmp_path: Path, config: str, where: list[int]) -> None:
    assert applied(tmp_path, config) == where


def test_never_applies_nowhere_once_it_happened_first(tmp_path: Path) -> None:
    events = [action("utter_greet"), action("action_listen")]
    assert applied(tmp_path, "m: {never: [{action: utter_greet}]}", events) == []


def test_sessions_are_read_apart(tmp_path: Path) -> None:
    (tmp_path / "markers.yml").write_text("m: {at_least_once: [{intent: greet}]}\n")
    markers = load_markers(tmp_path / "markers.yml")
    first, second = evaluate(markers, SESSION + SESSION)
    assert [(a.event_idx, a.preceding_user_turns) for a in first["m"]] == [(2, 0)]
    assert [(a.event_idx, a.preceding_user_turns) for a in second["m"]] == [(14, 0)]


@pytest.mark.parametrize(
    ("config", "said", "line"),
    [
        ("m: {intnt: greet}", "unknown 'intnt'", 1),
        ("a: {intent: greet}\nm:\n  seq: greet\n", "'seq' takes a list of markers", 3),
        ("m:\n  not:\n    - {intent: a}\n    - {intent: b}\n", "'not' takes exactly one", 2),
        ("m: {intent: [a, b]}", "'intent' takes a name", 1),
        ("intent: {intent: greet}", "is a condition or operator, not a marker's name", 1),
        ("m: {intent: a, action: b}", "one condition or operator per marker", 1),
        ("m: greet", "a condition or operator with its value", 1),
        ("m:\n  seq:\n    - {intent: a}\n    - {bogus: b}\n", "unknown 'bogus'", 4),
    ],
)
def test_mistakes_name_the_file_and_line(tmp_path: Path, config: str, said: str, line: int) -> None:
    (tmp_path / "markers.yml").write_text(config)
    with pytest.raises(ProjectError) as raised:
        load_markers(tmp_path / "markers.yml")
    assert said in str(raised.value)
    assert f"markers.yml:{line}:" in str(raised.value)


def test_names_are_unique_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("m: {intent: greet}\n")
    (tmp_path / "b.yml").write_text("m: {intent: goodbye}\n")
    with pytest.raises(ProjectError, match="marker 'm' is defined twice"):
        load_markers(tmp_path)


MARKERS = """\
greeted:
  seq:
    - intent: greet
    - action: utter_greet
cheered_up:
  at_least_once:
    - action: utter_cheer_up
"""


async def _conversations(project: Path) -> None:
    store = SQLStore(f"sqlite:///{project / '.chatbot' / 'conversations.db'}")
    agent = Agent(dialogue_model("moodbot"), store=store)
    try:
        for sender, texts in [("ann", ["/greet", "/mood_unhappy"]), ("bob", ["/greet"])]:
            for text in texts:
                await agent.handle_text(text, sender)
    finally:
        await agent.close()


def test_the_command_over_stored_conversations(tmp_path: Path) -> None:
    import shutil

    from tests.helpers import DOMAINS

    project = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", project, ignore=shutil.ignore_patterns("models"))
    (project / ".chatbot").mkdir()
    asyncio.run(_conversations(project))
    (project / "markers.yml").write_text(MARKERS)
    out = tmp_path / "out.csv"

    result = chatbot("evaluate", "markers", "all", str(out), "--project", str(project))

    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    found = {(r["sender_id"], r["marker"]) for r in rows}
    assert found == {("ann", "greeted"), ("ann", "cheered_up"), ("bob", "greeted")}
    ann_cheer = next(r for r in rows if r["marker"] == "cheered_up")
    assert (ann_cheer["session_idx"], ann_cheer["num_preceding_user_turns"]) == ("0", "2")
    overall = list(csv.reader((tmp_path / "stats-overall.csv").read_text().splitlines()))
    assert overall[0] == ["sender_id", "session_idx", "marker", "statistic", "value"]
    assert ["all", "nan", "-", "total_number_of_sessions", "2"] in overall
    assert [
        "all", "nan", "cheered_up",
        "number_of_sessions_where_marker_applied_at_least_once", "1",
    ] in overall  # fmt: skip
    assert ["all", "nan", "greeted", "percentage_of_sessions_where_marker_applied_at_least_once",
            "100.0"] in overall  # fmt: skip
    per_session = list(csv.reader((tmp_path / "stats-per-session.csv").read_text().splitlines()))
    assert ["bob", "0", "cheered_up", "count(number of preceding user turns)", "0"] in per_session
    assert ["bob", "0", "cheered_up", "mean(number of preceding user turns)", "nan"] in per_session

    again = chatbot("evaluate", "markers", "all", str(out), "--project", str(project))
    assert again.returncode == 1 and "exists already" in again.stderr
    first = tmp_path / "first.csv"
    result = chatbot(
        "evaluate", "markers", "first_n", "1", str(first), "--project", str(project), "--no-stats"
    )
    assert result.returncode == 0, result.stderr
    assert {r["sender_id"] for r in csv.DictReader(first.read_text().splitlines())} == {"ann"}
    (project / "markers.yml").write_text("m: {intent: greeet}\n")
    result = chatbot(
        "evaluate",
        "markers",
        "all",
        str(tmp_path / "x.csv"),
        "--project",
        str(project),
        "--no-stats",
    )
    assert result.returncode == 1 and "no intent 'greeet' in the domain" in result.stderr
