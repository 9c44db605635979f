"""A domain split over several files or a domain/ folder, merged like Rasa merges it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import read_domain

from .conftest import write


def test_split_domain_folder_is_merged(tmp_path: Path) -> None:
    folder = tmp_path / "domain"
    write(
        folder / "core.yml",
        """\
        version: "3.1"
        intents: [greet, bye]
        slots:
          city:
            type: text
        session_config:
          session_expiration_time: 10
        """,
    )
    write(
        folder / "sub" / "responses.yaml",
        """\
        intents: [greet, ask]
        responses:
          utter_greet:
            - text: hi
        actions: [action_a]
        """,
    )
    write(folder / "notes.txt", "not yaml: [")
    d = read_domain([folder])
    assert list(d.intents) == ["greet", "bye", "ask"]
    assert set(d.slots) == {"city"}
    assert set(d.responses) == {"utter_greet"}
    assert d.actions == ("action_a",)
    assert d.session_config.session_expiration_time == 10
    assert d.files == (str(folder / "core.yml"), str(folder / "sub" / "responses.yaml"))


def test_several_domain_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yml", "intents: [greet]\n")
    b = write(tmp_path / "b.yml", "intents: [bye]\nentities: [city]\n")
    d = read_domain([a, b])
    assert list(d.intents) == ["greet", "bye"]
    assert list(d.entities) == ["city"]


@pytest.mark.parametrize(
    ("first", "second", "needle", "kept"),
    [
        (
            "slots:\n  city:\n    type: text\n",
            "slots:\n  city:\n    type: bool\n",
            "slot 'city' is defined twice with different content",
            lambda d: d.slots["city"].type == "text",
        ),
        (
            "responses:\n  utter_hi:\n    - text: hi\n",
            "responses:\n  utter_hi:\n    - text: hello\n",
            "response 'utter_hi' is defined twice",
            lambda d: d.responses["utter_hi"][0].text == "hi",
        ),
        (
            "forms:\n  f:\n    required_slots: [a]\n",
            "forms:\n  f:\n    required_slots: [b]\n",
            "form 'f' is defined twice",
            lambda d: d.forms["f"].required_slots == ("a",),
        ),
    ],
)
def test_conflicting_definitions_in_two_files_name_both_places_and_the_first_holds(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    first: str,
    second: str,
    needle: str,
    kept: Callable[[Domain], bool],
) -> None:
    """As Rasa's domain folders: a warning naming both places, the first definition used."""
    a = write(tmp_path / "domain" / "a.yml", first)
    write(tmp_path / "domain" / "b.yml", second)
    with caplog.at_level(logging.WARNING):
        domain = read_domain([tmp_path / "domain"])
    assert kept(domain)
    [warning] = [r.getMessage() for r in caplog.records if "twice" in r.getMessage()]
    assert needle in warning and "b.yml:2:" in warning and f"{a}:2" in warning
    assert "the first definition is used" in warning


def test_a_setting_set_twice_differently_names_both_places(tmp_path: Path) -> None:
    a = write(tmp_path / "domain" / "a.yml", "session_config:\n  session_expiration_time: 5\n")
    write(tmp_path / "domain" / "b.yml", "session_config:\n  session_expiration_time: 6\n")
    with pytest.raises(ProjectErrors) as info:
        read_domain([tmp_path / "domain"])
    [error] = info.value.errors
    assert "'session_expiration_time' is set twice" in str(error)
    assert "b.yml:2:" in str(error) and f"{a}:2" in str(error)


def test_identical_definitions_in_two_files_are_fine(tmp_path: Path) -> None:
    text = "slots:\n  city:\n    type: text\nresponses:\n  utter_hi:\n    - text: hi\n"
    write(tmp_path / "domain" / "a.yml", text)
    write(tmp_path / "domain" / "b.yml", text)
    d = read_domain([tmp_path / "domain"])
    assert set(d.slots) == {"city"}


def test_missing_domain_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectErrors) as info:
        read_domain([tmp_path / "domain.yml"])
    assert str(tmp_path / "domain.yml") in str(info.value)
    assert "not found" in str(info.value)


def test_yaml_error_in_one_file_does_not_hide_another(tmp_path: Path) -> None:
    write(tmp_path / "domain" / "a.yml", "intents: [greet\n")
    write(tmp_path / "domain" / "b.yml", "slots:\n  x:\n    type: nope\n")
    with pytest.raises(ProjectErrors) as info:
        read_domain([tmp_path / "domain"])
    text = str(info.value)
    assert "a.yml:2: YAML syntax error" in text
    assert "b.yml:3:" in text
