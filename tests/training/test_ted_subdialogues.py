"""The TED paper's sub-dialogue stories (Rasa 1.x Markdown without a domain file) are read into
stories and a domain, and the benchmark runs end to end on a tiny generated sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.project.stories import ActionStep, SlotStep, UserStep
from training.benchmarks import ted_subdialogues
from training.benchmarks.rasa1_data import domain_of_stories, read_markdown_stories

HOTEL = """## Generated Story 1
* request_hotel
    - utter_ask_details
* inform{"people": "4"}
    - slot{"people": "4"}
    - utter_ask_location
* explain
    - utter_explain_location_hotel
    - utter_ask_location
* inform{"location": "paris"}
    - utter_filled_slots
    - action_search_hotel
    - slot{"hotel": "hotel"}
    - utter_suggest_hotel
* affirm
        - utter_happy
"""
RESTAURANT = """## restaurant happy 1
* request_restaurant
    - utter_ask_details
* inform{"cuisine": "italian"}
    - utter_ask_location
* chitchat
    - utter_chitchat
    - utter_ask_location
* inform{"location": "rome"}
    - utter_filled_slots
    - action_search_restaurant
    - slot{"restaurant": "restaurant"}
    - utter_suggest_restaurant
* affirm
    - utter_happy
""".replace("utter_ask_location\n* chitchat", "utter_ask_location   \n* chitchat")  # as the data


def write_sample(root: Path) -> Path:
    core = root / "ted-paper" / "sub_dialogues_data" / "core"
    (core / "train").mkdir(parents=True)
    (core / "test").mkdir()
    (core / "train" / "restaurant_happy.md").write_text(RESTAURANT)
    (core / "train" / "simulated_hotel_train.md").write_text(HOTEL)
    (core / "test" / "simulated_hotel_test.md").write_text(HOTEL)
    return core


def test_a_domain_comes_from_the_stories_and_entities_fill_its_slots(tmp_path: Path) -> None:
    path = tmp_path / "stories.md"
    path.write_text(HOTEL + "\n" + RESTAURANT)
    domain = domain_of_stories(read_markdown_stories(path, end_to_end=False))
    assert list(domain.intents) == [
        "request_hotel",
        "inform",
        "explain",
        "affirm",
        "request_restaurant",
        "chitchat",
    ]
    assert list(domain.entities) == ["people", "location", "cuisine"]
    assert list(domain.slots) == ["people", "location", "hotel", "cuisine", "restaurant"]
    assert {s.type for s in domain.slots.values()} == {"text"}
    assert domain.actions[:3] == (
        "utter_ask_details",
        "utter_ask_location",
        "utter_explain_location_hotel",
    )
    assert "utter_happy" in domain.actions and "action_search_restaurant" in domain.actions

    hotel, restaurant = read_markdown_stories(path, end_to_end=False, slots=domain.slots)
    assert hotel.steps[3:6] == (  # the explicit slot event follows the entity's
        SlotStep((("people", "4"),)),
        SlotStep((("people", "4"),)),
        ActionStep(name="utter_ask_location"),
    )
    # an entity alone sets its slot; trailing spaces and deeper indents are read
    assert restaurant.steps[2] == UserStep(intent="inform", entities=restaurant.steps[2].entities)
    assert restaurant.steps[3] == SlotStep((("cuisine", "italian"),))
    assert restaurant.steps[4] == ActionStep(name="utter_ask_location")
    assert hotel.steps[-1] == ActionStep(name="utter_happy")


def test_the_benchmark_trains_on_the_train_files_and_scores_the_test_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    core = write_sample(tmp_path)
    monkeypatch.setenv("CHATBOT_DATA_DIR", str(tmp_path))
    domain, by_file, test = ted_subdialogues.load(core)
    assert sorted(by_file) == ["restaurant_happy", "simulated_hotel_train"]
    assert [s.name for s in test] == ["simulated_hotel_test/Generated Story 1"]
    assert "utter_explain_location_hotel" in domain.actions

    monkeypatch.setattr(
        "sys.argv", ["ted_subdialogues", "--hotel-stories", "0", "1", "--set", "epochs=2"]
    )
    ted_subdialogues.main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["hotel_train_stories"] for r in lines] == [0, 1]
    assert [r["train_stories"] for r in lines] == [1, 2]
    for result in lines:
        assert result["test_stories"] == 1
        assert result["actions"] == 13  # 8 bot actions, a listen after each of 5 turns
        assert result["bot_actions"] == 8
        assert 0.0 <= result["action_accuracy"] <= 1.0
