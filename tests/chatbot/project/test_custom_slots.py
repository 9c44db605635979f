"""A Rasa 3 domain's slot of the project's own class (``type: addons.slots.NumberOfPeopleSlot``)
is imported with the project, the policies see it through the class's ``as_feature()``, a model
file keeps the class's path and imports it again when served, and a bad class is an error naming
the domain's line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.state import decode_state, encode_state, slot_feature
from chatbot.errors import ProjectErrors
from chatbot.project.domain_reader import domain_from_dict, domain_to_dict
from chatbot.project.loader import check_project
from tests.helpers import code_package, json_printed_by, project_files, train_files

SOURCE = Path(__file__).parent / "custom_slot_source.py"


def domain(package: str, people: str = "NumberOfPeopleSlot", extra: str = "") -> str:
    return (
        'version: "3.1"\nintents: [greet, inform]\nentities: [people]\n'
        "slots:\n"
        f"  people:\n    type: {package}.slots.{people}\n{extra}"
        "    mappings:\n      - type: from_entity\n        entity: people\n"
        "responses:\n  utter_hi:\n    - text: Hi!\n"
        "  utter_small:\n    - text: A table for a few.\n"
        "  utter_large:\n    - text: A room for a group.\n"
    )


NLU = "nlu:\n" + "".join(
    f"- intent: {intent}\n  examples: |\n    - {intent}\n    - {intent} please\n"
    for intent in ("greet", "inform")
)
# The rules tell small parties from large ones only through the class's features: as a text slot
# both would be "set", and the two rules would contradict each other.
RULES = (
    "rules:\n"
    "- rule: few\n  steps:\n  - intent: inform\n  - slot_was_set:\n    - people: 2\n"
    "  - action: utter_small\n"
    "- rule: many\n  steps:\n  - intent: inform\n  - slot_was_set:\n    - people: 12\n"
    "  - action: utter_large\n"
    "- rule: hi\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
)
CONFIG = (
    "pipeline:\n  - name: WhitespaceTokenizer\n  - name: DIETClassifier\n    epochs: 5\n"
    "policies:\n  - name: RulePolicy\n"
)


def files(package: str, **kwargs: str) -> dict[str, str]:
    return {
        "domain.yml": domain(package, **kwargs),
        "data/nlu.yml": NLU,
        "data/rules.yml": RULES,
        "config.yml": CONFIG,
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("slots")
    yield root, code_package(root, "slots", {"slots": SOURCE.read_text()})


@pytest.fixture(scope="module")
def model(project: tuple[Path, str]) -> TrainedModel:
    root, package = project
    return train_files(root, files(package))


async def test_the_policies_see_the_slot_through_its_class(model: TrainedModel) -> None:
    """People 5 and 8 were never in the rules: their features (up to six, or more) choose."""
    people = model.domain.slots["people"]
    assert people.kind is not None and people.kind.dimension == 2
    assert people.type == "text"  # a Slot subclass alone: its values handled as text's
    agent = Agent(model)
    for count, said in ((5, "A table for a few."), (8, "A room for a group.")):
        answer = await agent.handle_text(f'/inform{{"people": {count}}}', f"u{count}")
        assert [m["text"] for m in answer] == [said]
    # unset: the class's zeros, so no slot feature at all (Rasa leaves such a slot out)
    assert slot_feature(people, None) is None
    assert slot_feature(people, 3) == (1.0, 0.0)
    await agent.close()


def test_a_model_file_imports_the_class_again(
    model: TrainedModel, project: tuple[Path, str], tmp_path: Path
) -> None:
    root, package = project
    path = tmp_path / "people.model"
    model.to_file(path)
    # the memorized rule states keep the class's numbers
    rules = [p for p in TrainedModel.from_file(path).policies if p.name == "RulePolicy"]
    assert rules
    script = (
        "import asyncio, json\n"
        "from chatbot.agent import Agent\n"
        f"agent = Agent.load({str(path)!r})\n"
        "async def main():\n"
        "    out = []\n"
        "    for n in (3, 30):\n"
        "        answer = await agent.handle_text('/inform{\"people\": %d}' % n, 'u%d' % n)\n"
        "        out.append([m['text'] for m in answer])\n"
        "    await agent.close()\n"
        "    print(json.dumps(out))\n"
        "asyncio.run(main())\n"
    )
    expected = [["A table for a few."], ["A room for a group."]]
    assert json_printed_by(script, root) == expected
    # from another folder: the project's folder recorded at training is searched
    assert json_printed_by(script, tmp_path) == expected
    written = domain_to_dict(model.domain)["slots"]["people"]
    assert written["type"] == f"{package}.slots.NumberOfPeopleSlot"


def test_a_model_whose_class_is_not_found_is_refused(model: TrainedModel, tmp_path: Path) -> None:
    """Served from a folder without the project's code, and the folder recorded at training
    gone: a ModelFileError saying where the code is looked for."""
    recorded = model.meta["code_folder"]
    assert Path(recorded).is_dir()
    model.meta["code_folder"] = str(tmp_path / "gone")
    try:
        model.to_file(tmp_path / "people.model")
    finally:
        model.meta["code_folder"] = recorded
    script = (
        "import json, pathlib\n"
        "from chatbot.agent import TrainedModel\n"
        "from chatbot.errors import ModelFileError\n"
        "try:\n"
        "    TrainedModel.from_file(pathlib.Path('people.model'))\n"
        "    print(json.dumps('loaded'))\n"
        "except ModelFileError as e:\n"
        "    print(json.dumps(str(e)))\n"
    )
    said = json_printed_by(script, tmp_path)
    assert "slot 'people'" in said and "no module" in said, said
    assert "run chatbot from the project's folder" in said


def test_its_settings_reach_the_class_and_the_domain_round_trips(tmp_path: Path) -> None:
    package = code_package(tmp_path, "slots", {"slots": SOURCE.read_text()})
    loaded = project_files(
        tmp_path,
        {
            "domain.yml": domain(
                package, people="SizeSlot", extra="    limit: 4\n    values: [small, big]\n"
            )
        },
    )
    size = loaded.domain.slots["people"]
    assert size.kind is not None and size.kind.instance().limit == 4
    # a CategoricalSlot subclass: its values are the validator's, its type categorical
    assert (size.type, size.values) == ("categorical", ("small", "big"))
    assert (slot_feature(size, 3), slot_feature(size, 7)) == ((1.0, 0.0), (0.0, 1.0))
    assert slot_feature(size, "BIG") == (0.0, 1.0)  # the built-in class's own reading
    written = domain_to_dict(loaded.domain)
    assert written["slots"]["people"]["limit"] == 4
    again = domain_from_dict(written)
    assert again.slots["people"].custom == size.custom
    assert again.slots["people"].settings == size.settings


def test_a_state_with_the_class_numbers_survives_json() -> None:
    state = (("prev_action", "action_listen"), ("slot:people", (1.0, 0.0)))
    assert decode_state(encode_state(state)) == state
    with pytest.raises(ValueError, match="a vector of"):
        decode_state([["slot:people", {"vector": ["x"]}]])


@pytest.mark.parametrize(
    ("people", "extra", "said"),
    [
        ("Missing", "", "has no class 'Missing'"),
        ("NotASlot", "", "is not a slot class"),
        ("Negative", "", "feature_dimensionality() must be a whole number"),
        ("NumberOfPeopleSlot", "    seats: 4\n", "unexpected keyword argument 'seats'"),
    ],
)
def test_a_bad_class_is_an_error_naming_the_domain_line(
    tmp_path: Path, people: str, extra: str, said: str
) -> None:
    package = code_package(tmp_path, "slots", {"slots": SOURCE.read_text()})
    (tmp_path / "domain.yml").write_text(domain(package, people=people, extra=extra))
    loaded, errors = check_project(tmp_path)
    assert loaded is None
    (error,) = errors
    assert str(error).startswith(f"{tmp_path / 'domain.yml'}:5: slot 'people'"), str(error)
    assert said in str(error)


def test_a_missing_module_names_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text(domain("nowhere_pkg"))
    with pytest.raises(ProjectErrors) as raised:
        project_files(tmp_path, {})
    (error,) = raised.value.errors
    assert "no module 'nowhere_pkg'" in str(error) and str(tmp_path) in str(error)


def test_a_failing_class_leaves_the_slot_unset_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    package = code_package(tmp_path, "slots", {"slots": SOURCE.read_text()})
    loaded = project_files(tmp_path, {"domain.yml": domain(package, people="Broken")})
    broken = loaded.domain.slots["people"]
    assert broken.kind is not None and broken.kind.dimension == 1
    with caplog.at_level(logging.ERROR, logger="chatbot.rasa_compat.slots"):
        assert slot_feature(broken, "yes") == (1.0,)
        assert slot_feature(broken, "boom") is None
        assert slot_feature(broken, "boom") is None
        assert slot_feature(broken, "two") is None  # two numbers where it said one
    said = [r for r in caplog.records if "slot 'people'" in r.getMessage()]
    assert len(said) == 3
    assert said[0].exc_info and not said[1].exc_info  # one traceback
    assert "gave 2 numbers" in said[2].getMessage()
    assert slot_feature(broken, "yes") == (1.0,)  # and it goes on


async def test_the_policies_train_with_it_in_a_second_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Training's second process gets the project pickled: the class is imported again there."""
    from training.train import train_project

    package = code_package(tmp_path, "slots", {"slots": SOURCE.read_text()})
    project = project_files(tmp_path, files(package))
    with caplog.at_level(logging.WARNING, logger="training.parallel"):
        model = train_project(project, show_progress=False, parallel=True)
    assert not [r for r in caplog.records if "second process" in r.getMessage()]
    agent = Agent(model)
    answer = await agent.handle_text('/inform{"people": 9}', "p")
    assert [m["text"] for m in answer] == ["A room for a group."]
    await agent.close()


def test_editing_the_class_trains_the_policies_again(tmp_path: Path) -> None:
    from training.reuse import part_fingerprints

    package = code_package(tmp_path, "slots", {"slots": SOURCE.read_text()})
    before = part_fingerprints(project_files(tmp_path, files(package)), seed=42, augmentation=None)
    module = tmp_path / package / "slots.py"
    module.write_text(module.read_text() + "\n# edited\n")
    after = part_fingerprints(project_files(tmp_path, {}), seed=42, augmentation=None)
    assert after["core"] != before["core"] and after["nlu"] == before["nlu"]


def test_a_custom_policy_reads_the_slot_as_its_class(model: TrainedModel) -> None:
    from chatbot.conversation import events as ev
    from chatbot.conversation.conversation import Conversation
    from chatbot.rasa_compat.core import DialogueStateTracker, Domain

    conversation = Conversation("c", model.domain)
    conversation.extend([ev.action("action_listen"), ev.slot("people", 7)])
    slot = DialogueStateTracker(conversation).slots["people"]
    assert type(slot).__name__ == "NumberOfPeopleSlot"
    assert (slot.value, slot.as_feature()) == (7, [0.0, 1.0])
    assert DialogueStateTracker(conversation).get_slot("people") == 7
    viewed = {s.name: s for s in Domain(model.domain).slots}
    assert (
        viewed["people"].value is None
        and type(viewed["people"]).__name__ == slot.__class__.__name__
    )


def test_the_lstm_featurizer_gives_each_number_a_feature(model: TrainedModel) -> None:
    from chatbot.dialogue.featurizer import StateFeaturizer

    featurizer = StateFeaturizer.build(model.domain)
    names = [n for n in featurizer.features if n.startswith("slot:people")]
    assert names == ["slot:people#0", "slot:people#1"]
    indices, values = featurizer.featurize((("slot:people", (0.0, 0.5)),))
    assert [featurizer.features[i] for i in indices] == ["slot:people#1"] and values == (0.5,)
