"""``chatbot data migrate``: a Rasa 2 domain in Rasa 3's format, as ``rasa data migrate`` writes
it; the result loads without errors and the original is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chatbot.project.domain_reader import read_domain
from chatbot.project.migrate import MigrationError, migrate_domain, write
from tests.test_cli import chatbot

RASA2 = """\
version: "2.0"
intents: [greet, inform, request_restaurant]
entities:
  - cuisine
  - number
  - city:
      roles: [from, to]
slots:
  cuisine:
    type: text
  number:
    type: float
    auto_fill: false
  city:
    type: text
    influence_conversation: false
  notes:
    type: unfeaturized
  outdoor:
    type: bool
responses:
  utter_ask_cuisine:
  - text: Which cuisine?
  utter_ask_num_people:
  - text: How many?
  utter_ask_outdoor:
  - text: Outside?
forms:
  restaurant_form:
    ignored_intents: [greet]
    required_slots:
      cuisine:
        - type: from_entity
          entity: cuisine
      num_people:
        - type: from_entity
          entity: number
        - type: from_text
      outdoor:
        - type: from_intent
          intent: affirm
          value: true
"""


def test_a_rasa2_domain_in_rasa3_format(tmp_path: Path) -> None:
    domain = tmp_path / "domain.yml"
    domain.write_text(RASA2)
    migration = migrate_domain(domain)
    write(migration)

    out = tmp_path / "new_domain.yml"
    assert list(migration.files) == [out] and domain.read_text() == RASA2
    assert out.read_text().startswith('version: "3.1"\n')
    new = yaml.safe_load(out.read_text())
    form = {"active_loop": "restaurant_form"}
    asked = {**form, "requested_slot": "num_people"}
    assert new["forms"] == {
        "restaurant_form": {
            "required_slots": ["cuisine", "num_people", "outdoor"],
            "ignored_intents": ["greet"],
        }
    }
    slots = new["slots"]
    # auto_fill (Rasa 2's default): the entity of the slot's name fills it, besides the form.
    assert slots["cuisine"]["mappings"] == [
        {"type": "from_entity", "entity": "cuisine", "conditions": [form]},
        {"type": "from_entity", "entity": "cuisine"},
    ]
    assert slots["number"]["mappings"] == [{"type": "custom"}]  # auto_fill: false, no form
    assert "auto_fill" not in slots["number"]
    assert slots["city"]["mappings"] == [{"type": "from_entity", "entity": "city"}]
    assert slots["notes"] == {
        "type": "any",
        "influence_conversation": False,
        "mappings": [{"type": "custom"}],
    }
    assert slots["num_people"] == {
        "type": "any",
        "mappings": [
            {"type": "from_entity", "entity": "number", "conditions": [form]},
            {"type": "from_text", "conditions": [asked]},
        ],
    }
    assert slots["outdoor"]["mappings"] == [
        {
            "type": "from_intent",
            "intent": "affirm",
            "value": True,
            "conditions": [{**form, "requested_slot": "outdoor"}],
        }
    ]
    notes = "\n".join(migration.notes)
    assert "slot 'number'" in notes and "slot 'num_people'" in notes and "unfeaturized" in notes

    # The migrated domain reads without errors (the original does not).
    read = read_domain([out])
    assert read.forms["restaurant_form"].required_slots == ("cuisine", "num_people", "outdoor")
    assert "num_people" in read.slots


def test_the_command_refuses_to_overwrite_or_to_migrate_twice(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text(RASA2)
    result = chatbot("data", "migrate", "--project", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "note: slot 'number'" in result.stderr
    assert (tmp_path / "new_domain.yml").is_file()

    again = chatbot("data", "migrate", "--project", str(tmp_path))
    assert again.returncode == 1 and "exists already" in again.stderr
    twice = chatbot("data", "migrate", "-d", str(tmp_path / "new_domain.yml"), "--out",
                    str(tmp_path / "x.yml"))  # fmt: skip
    assert twice.returncode == 1 and "Rasa 3's format already" in twice.stderr
    assert not (tmp_path / "x.yml").exists()


def test_a_domain_folder_is_migrated_file_by_file(tmp_path: Path) -> None:
    folder = tmp_path / "domain"
    folder.mkdir()
    data = yaml.safe_load(RASA2)
    slots_and_forms = {k: data[k] for k in ("version", "entities", "slots", "forms")}
    (folder / "forms.yml").write_text(yaml.safe_dump(slots_and_forms, sort_keys=False))
    rest = {k: data[k] for k in ("version", "intents", "responses")}
    (folder / "rest.yml").write_text(yaml.safe_dump(rest, sort_keys=False))

    migration = migrate_domain(folder)
    write(migration)

    out = tmp_path / "new_domain"
    assert sorted(p.name for p in out.iterdir()) == ["forms.yml", "rest.yml"]
    assert yaml.safe_load((out / "rest.yml").read_text())["version"] == "3.1"
    read = read_domain([out])
    assert "utter_ask_outdoor" in read.responses and "outdoor" in read.slots


def test_slots_in_two_files_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "domain"
    folder.mkdir()
    (folder / "a.yml").write_text('version: "2.0"\nslots:\n  a:\n    type: text\n')
    (folder / "b.yml").write_text('version: "2.0"\nslots:\n  b:\n    type: text\n')
    with pytest.raises(MigrationError, match="'slots' is in 2 files"):
        migrate_domain(folder)
