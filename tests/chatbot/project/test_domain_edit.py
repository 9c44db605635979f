"""Adding intents to a domain file changes nothing but the intents list: comments, quotes and
layout stay byte for byte; where that cannot be done safely the file is not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.project.domain_edit import add_intents
from chatbot.project.loader import load_project

REST = "responses:\n  utter_greet:\n    - text: 'Hi!'   # said first\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (  # two-space items, a commented item, a nested one, a blank line before the next key
            "# my bot\nintents:\n  - greet   # hello\n  - inform:\n      use_entities: []\n\n"
            + REST,
            "# my bot\nintents:\n  - greet   # hello\n  - inform:\n      use_entities: []\n"
            '  - ask_weather\n  - "yes"\n\n' + REST,
        ),
        (  # items at column 0, intents last, no newline at the end
            REST + "intents:\n- greet\n- inform",
            REST + 'intents:\n- greet\n- inform\n- ask_weather\n- "yes"\n',
        ),
        (  # Windows line ends, a trailing comment in the list
            "intents:\r\n  - greet\r\n  # more later\r\n" + REST.replace("\n", "\r\n"),
            'intents:\r\n  - greet\r\n  - ask_weather\r\n  - "yes"\r\n  # more later\r\n'
            + REST.replace("\n", "\r\n"),
        ),
    ],
)
def test_new_intents_join_the_list_in_its_own_layout(
    tmp_path: Path, before: str, after: str
) -> None:
    path = tmp_path / "domain.yml"
    path.write_bytes(before.encode())
    assert add_intents(path, ["ask_weather", "yes", "greet"])  # greet is there already
    assert path.read_bytes().decode() == after
    names = list(load_project(tmp_path).domain.intents)
    assert names[-2:] == ["ask_weather", "yes"]  # "yes" stays text


@pytest.mark.parametrize(
    "before",
    [
        "intents: [greet, inform]\n" + REST,  # inline
        REST,  # no intents at all
        "intents:\n" + REST,  # an empty key
        "intents:\n  - greet\n  - {inform: {use_entities: []}, bye: {}}\n" + REST,  # not names
    ],
)
def test_a_list_it_cannot_add_to_safely_is_left_alone(tmp_path: Path, before: str) -> None:
    path = tmp_path / "domain.yml"
    path.write_text(before)
    assert not add_intents(path, ["ask_weather"])
    assert path.read_text() == before
    assert not list(tmp_path.glob("*.tmp"))
