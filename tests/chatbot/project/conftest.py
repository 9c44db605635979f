"""Small projects written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

DOMAIN = """\
version: "3.1"
intents:
  - greet
  - inform
  - faq
entities:
  - city
  - name:
      roles: [from, to]
slots:
  city:
    type: text
    mappings:
      - type: from_entity
        entity: city
  size:
    type: categorical
    values: [small, large]
    mappings:
      - type: from_text
        conditions:
          - active_loop: order_form
            requested_slot: size
responses:
  utter_greet:
    - text: "Hello {city}!"
  utter_ask_size:
    - text: "Which size?"
  utter_faq/ask_name:
    - text: "I am a bot."
actions:
  - action_check
forms:
  order_form:
    required_slots:
      - size
"""

STORIES = """\
version: "3.1"
stories:
  - story: greet
    steps:
      - intent: greet
      - action: utter_greet
rules:
  - rule: faq
    steps:
      - intent: faq
      - action: utter_faq
"""

NLU = """\
version: "3.1"
nlu:
  - intent: greet
    examples: |
      - hi
      - hello from [Berlin](city)
  - intent: faq/ask_name
    examples: |
      - what is your name
"""

ProjectMaker = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectMaker:
    """Write ``files`` (path -> YAML text, dedented) under tmp_path/bot; a minimal valid project
    (domain.yml, data/stories.yml, data/nlu.yml) unless a file of that name is given or None."""

    def make(files: dict[str, str | None] | None = None, *, base: bool = True) -> Path:
        root = tmp_path / "bot"
        root.mkdir(exist_ok=True)
        contents: dict[str, str | None] = (
            {"domain.yml": DOMAIN, "data/stories.yml": STORIES, "data/nlu.yml": NLU} if base else {}
        )
        contents.update(files or {})
        for name, text in contents.items():
            if text is None:
                continue
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return make


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
