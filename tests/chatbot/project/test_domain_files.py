"""A domain split over several files or a domain/ folder, merged like Rasa merges it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
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
    ("first", "second", "needle"),
    [
        (
            "slots:\n  city:\n    type: text\n",
            "slots:\n  city:\n    type: bool\n",
            "slot 'city' is defined twice with different content",
        ),
        (
            "responses:\n  utter_hi:\n    - text: hi\n",
            "responses:\n  utter_hi:\n    - text: hello\n",
            "response 'utter_hi' is defined twice",
        ),
        (
            "forms:\n  f:\n    required_slots: [a]\n",
            "forms:\n  f:\n    required_slots: [b]\n",
            "form 'f' is defined twice",
        ),
        (
            "session_config:\n  session_expiration_time: 5\n",
            "session_config:\n  session_expiration_time: 6\n",
            "'session_expiration_time' is set twice",
        ),
    ],
)
def test_conflicting_definitions_name_both_places(
    tmp_path: Path, first: str, second: str, needle: str
) -> None:
    a = write(tmp_path / "domain" / "a.yml", first)
    write(tmp_path / "domain" / "b.yml", second)
    with pytest.raises(ProjectErrors) as info:
        read_domain([tmp_path / "domain"])
    [error] = info.value.errors
    assert needle in str(error)
    assert "b.yml:2:" in str(error)
    assert f"{a}:2" in str(error)


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
