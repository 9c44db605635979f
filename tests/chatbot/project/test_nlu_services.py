"""NLU data exported from LUIS, Wit.ai and Dialogflow, read as Rasa 3 reads it: in a project's
data/ folder (beside YAML and Rasa's JSON) and by ``chatbot data convert nlu``; a mistake names
the file and the place in it; JSON that is not training data is left alone."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.project.loader import load_project
from chatbot.project.nlu_reader import read_nlu
from chatbot.project.nlu_services import read_json_nlu
from chatbot.project.training_data import NLUData
from tests.chatbot.server.test_fuzz import json_values, mostly, texts
from tests.test_cli import chatbot

LUIS: dict[str, Any] = {
    "luis_schema_version": "7.0.0",
    "intents": [{"name": "BookFlight"}, {"name": "None"}],
    "entities": [{"name": "city", "roles": ["from", "to"]}],
    "closedLists": [
        {
            "name": "airline",
            "subLists": [{"canonicalForm": "Lufthansa", "list": ["LH", "lufthansa airlines"]}],
            "roles": [],
        }
    ],
    "regex_entities": [{"name": "flight_no", "regexPattern": "[A-Z]{2}[0-9]{3,4}", "roles": []}],
    "regex_features": [
        {"name": "digits", "pattern": "[0-9]+", "activated": True},
        {"name": "unused", "pattern": "x+", "activated": False},
    ],
    "patterns": [{"pattern": "fly to {city}", "intent": "BookFlight"}],
    "utterances": [
        {
            "text": "book a flight from Berlin to Paris",
            "intent": "BookFlight",
            "entities": [
                {"entity": "city", "role": "from", "startPos": 19, "endPos": 24},
                {"entity": "city", "role": "to", "startPos": 29, "endPos": 33},
            ],
        },
        {"text": "what is the weather", "intent": "None", "entities": []},
    ],
}
WIT: dict[str, Any] = {
    "utterances": [
        {
            "text": "wake me up at 7am",
            "intent": "set_alarm",
            "entities": [
                {"entity": "wit$datetime:datetime", "start": 14, "end": 17, "body": "7am"},
                {"entity": "who", "start": 5, "end": 7, "body": "me", "entities": []},
            ],
            "traits": [],
        },
        {"text": "the sky is blue", "entities": [], "traits": []},
        {"text": "no entities list: not an example", "intent": "greet"},
    ]
}


def dialogflow_agent(folder: Path) -> Path:
    """A Dialogflow ES export: agent and package files, intents and entities with their
    per-language example files."""
    files: dict[str, Any] = {
        "agent.json": {"description": "", "language": "en", "supportedLanguages": ["de"]},
        "package.json": {"version": "1.0.0"},
        "intents/book_flight.json": {"id": "a1", "name": "book_flight", "responses": []},
        "intents/book_flight_usersays_en.json": [
            {
                "id": "e1",
                "data": [
                    {"text": "fly to ", "userDefined": False},
                    {"text": "Paris", "alias": "city", "meta": "@city", "userDefined": True},
                    {"text": " on ", "userDefined": False},
                    {"text": "Monday", "meta": "@sys.date", "userDefined": True},
                    {"text": " please", "meta": "@sys.ignore", "userDefined": False},
                ],
                "isTemplate": False,
                "count": 0,
            },
            {"id": "e2", "data": [{"text": "I need a plane ticket", "userDefined": False}]},
        ],
        "intents/book_flight_usersays_de.json": [
            {"id": "e3", "data": [{"text": "flieg nach ", "userDefined": False}]}
        ],
        "intents/Default Fallback Intent.json": {
            "name": "Default Fallback Intent",
            "responses": [],
        },
        "entities/city.json": {"name": "city", "isEnum": False, "isRegexp": False},
        "entities/city_entries_en.json": [
            {"value": "Paris", "synonyms": ["Paris", "Paname"]},
            {"value": "New York", "synonyms": ["New York", "NYC", "@sys.geo-city"]},
        ],
        "entities/code.json": {"name": "code", "isEnum": False, "isRegexp": True},
        "entities/code_entries_en.json": [{"value": "[A-Z]{3}", "synonyms": ["[A-Z]{3}"]}],
    }
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    return folder


def summary(data: NLUData) -> Any:
    return (
        [
            (e.text, e.intent, [(a.start, a.end, a.value, a.entity, a.role) for a in e.entities])
            for e in data.examples
        ],
        dict(sorted(data.synonyms.items())),
        [(r.name, r.pattern) for r in data.regexes],
        [(t.name, t.elements) for t in data.lookups],
    )


def write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def test_luis_utterances_regexes_and_list_entities(tmp_path: Path) -> None:
    data = read_json_nlu(write(tmp_path / "luis.json", LUIS))
    assert data is not None
    assert summary(data) == (
        [
            (
                "book a flight from Berlin to Paris",
                "BookFlight",
                [(19, 25, "Berlin", "city", "from"), (29, 34, "Paris", "city", "to")],
            ),
            ("what is the weather", "None", []),
        ],
        {"lh": "Lufthansa", "lufthansa airlines": "Lufthansa"},
        [("digits", "[0-9]+"), ("flight_no", "[A-Z]{2}[0-9]{3,4}")],
        [("airline", ("Lufthansa", "LH", "lufthansa airlines"))],
    )


def test_wit_utterances_with_roles_and_out_of_scope(tmp_path: Path) -> None:
    data = read_json_nlu(write(tmp_path / "wit.json", WIT))
    assert data is not None
    assert summary(data)[0] == [
        (
            "wake me up at 7am",
            "set_alarm",
            [(5, 7, "me", "who", None), (14, 17, "7am", "wit$datetime", "datetime")],
        ),
        ("the sky is blue", "out_of_scope", []),
    ]


def test_a_dialogflow_agent_in_its_language(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = dialogflow_agent(tmp_path / "agent")
    assert read_json_nlu(agent / "agent.json") is None
    assert read_json_nlu(agent / "intents" / "book_flight_usersays_en.json") is None
    with caplog.at_level(logging.WARNING):
        assert summary(read_json_nlu(agent / "intents" / "Default Fallback Intent.json")) == (
            [],
            {},
            [],
            [],
        )  # type: ignore[arg-type]
    assert "Default Fallback Intent_usersays_en.json" in caplog.text
    intent = read_json_nlu(agent / "intents" / "book_flight.json")
    assert intent is not None
    assert summary(intent)[0] == [
        (
            "fly to Paris on Monday please",
            "book_flight",
            [(7, 12, "Paris", "city", None), (16, 22, "Monday", "@sys.date", None)],
        ),
        ("I need a plane ticket", "book_flight", []),
    ]
    german = read_json_nlu(agent / "intents" / "book_flight.json", "de")
    assert german is not None and [e.text for e in german.examples] == ["flieg nach "]
    city = read_json_nlu(agent / "entities" / "city.json")
    assert city is not None
    assert summary(city)[1:] == (
        {"nyc": "New York", "paname": "Paris", "@sys.geo-city": "New York"},
        [],
        [("city", ("Paris", "Paname", "New York", "NYC"))],
    )
    code = read_json_nlu(agent / "entities" / "code.json")
    assert code is not None and summary(code)[2:] == ([("code", "[A-Z]{3}")], [])


def luis_with(utterance: dict[str, Any]) -> dict[str, Any]:
    return {**LUIS, "utterances": [utterance]}


def wit_with(utterance: dict[str, Any]) -> dict[str, Any]:
    return {"utterances": [utterance]}


CITY = {"entity": "city", "startPos": 0, "endPos": 5}


@pytest.mark.parametrize(
    ("content", "place"),
    [
        (
            luis_with({"text": "hi", "intent": "x", "entities": [CITY]}),
            "utterances[0].entities[0]: the span 0..6",
        ),
        (luis_with({"text": "hi", "entities": []}), "utterances[0]: 'intent'"),
        (
            luis_with({"text": "hi", "intent": "x", "entities": [{**CITY, "startPos": "0"}]}),
            "'startPos' must be a whole number",
        ),
        (
            wit_with({"text": "hi", "entities": [{"entity": "a", "start": 1, "end": 1}]}),
            "utterances[0].entities[0]: the span 1..1",
        ),
        (wit_with({"text": "hi", "intent": 3, "entities": []}), "'intent' must be a text"),
        ({"utterances": "all of them"}, "'utterances' must be a list"),
    ],
)
def test_a_mistake_names_the_file_and_the_place(
    tmp_path: Path, content: dict[str, Any], place: str
) -> None:
    path = write(tmp_path / "export.json", content)
    with pytest.raises(ProjectError) as caught:
        read_json_nlu(path)
    assert str(path) in str(caught.value) and place in str(caught.value)


def test_json_in_a_projects_data_folder_is_training_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa 3: every NLU format it reads, side by side with YAML; other JSON left alone."""
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents: [greet]\n')
    (tmp_path / "config.yml").write_text("language: de\n")
    data = tmp_path / "data"
    write(data / "luis.json", LUIS)
    write(data / "wit.json", WIT)
    dialogflow_agent(data / "dialogflow")
    write(data / "rasa.json", {"rasa_nlu_data": {"common_examples": [
        {"text": "hallo", "intent": "greet", "entities": []}]}})  # fmt: skip
    write(data / "restaurants.json", {"restaurants": [{"name": "Roma"}]})  # not training data
    (data / "broken.json").write_text('{"utterances": [')
    (data / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'
    )
    with caplog.at_level(logging.WARNING):
        project = load_project(tmp_path)
    assert "broken.json" in caplog.text and "not valid JSON" in caplog.text
    texts = {e.text for e in project.nlu.examples}
    assert {"hi", "hallo", "book a flight from Berlin to Paris", "wake me up at 7am"} <= texts
    assert "flieg nach " in texts and "I need a plane ticket" not in texts  # config: language de
    assert project.nlu.synonyms["lh"] == "Lufthansa"

    write(data / "luis.json", {**LUIS, "utterances": [{"text": "x", "entities": []}]})
    with pytest.raises(ProjectErrors) as caught:
        load_project(tmp_path)
    assert "luis.json" in str(caught.value) and "utterances[0]" in str(caught.value)


def test_convert_writes_an_export_as_yaml_that_reads_back_the_same(tmp_path: Path) -> None:
    agent = dialogflow_agent(tmp_path / "agent")
    for source in (write(tmp_path / "luis.json", LUIS), write(tmp_path / "wit.json", WIT), agent):
        out = tmp_path / f"{source.stem}.yml"
        result = chatbot("data", "convert", "nlu", "--data", str(source), "--out", str(out))
        assert result.returncode == 0, result.stderr
        expected = NLUData()
        files = sorted(source.rglob("*.json")) if source.is_dir() else [source]
        for file in files:
            found = read_json_nlu(file)
            if found is not None:
                expected.merge(found)
        assert expected.examples
        assert summary(read_nlu(out)) == summary(expected)
    out = tmp_path / "german.yml"
    result = chatbot(
        "data", "convert", "nlu", "--data", str(agent), "--out", str(out), "--language", "de"
    )
    assert result.returncode == 0, result.stderr
    assert [e.text for e in read_nlu(out).examples] == ["flieg nach"]


def test_test_nlu_and_split_nlu_take_an_export_as_their_data(tmp_path: Path) -> None:
    from chatbot.cli_common import _read_nlu_data

    luis = write(tmp_path / "exports" / "luis.json", LUIS)
    assert len(_read_nlu_data(luis).examples) == 2
    dialogflow_agent(tmp_path / "exports" / "agent")
    (tmp_path / "exports" / "more.yml").write_text(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n"
    )
    assert len(_read_nlu_data(tmp_path / "exports").examples) == 5


def test_convert_names_json_that_is_no_nlu_data(tmp_path: Path) -> None:
    other = write(tmp_path / "exports" / "restaurants.json", {"restaurants": []})
    write(tmp_path / "exports" / "wit.json", WIT)
    result = chatbot(
        "data", "convert", "nlu", "--data", str(other), "--out", str(tmp_path / "a.yml")
    )
    assert result.returncode == 1 and "not NLU training data" in result.stderr
    assert "'luis_schema_version'" in result.stderr and "Traceback" not in result.stderr
    folder = tmp_path / "exports"
    result = chatbot(
        "data", "convert", "nlu", "--data", str(folder), "--out", str(tmp_path / "b.yml")
    )
    assert result.returncode == 0, result.stderr
    assert "restaurants.json: not NLU training data" in result.stderr and "skipped" in result.stderr
    assert len(read_nlu(tmp_path / "b.yml").examples) == 2


def test_json_nested_beyond_reason_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ProjectError, match="nested too deeply"):
        read_json_nlu(path)
    rasa = tmp_path / "rasa.json"
    rasa.write_text('{"rasa_nlu_data": ' + "[" * 200_000 + "]" * 200_000 + "}")
    result = chatbot(
        "data", "convert", "nlu", "--data", str(rasa), "--out", str(tmp_path / "o.yml")
    )
    assert result.returncode == 1 and "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


# -- random exports: a clear error or data, never a traceback ---------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
positions = mostly(st.integers(min_value=-3, max_value=40))
luis_entities = st.fixed_dictionaries(
    {"entity": mostly(st.sampled_from(["city", "date"])), "startPos": positions,
     "endPos": positions},
    optional={"role": mostly(st.sampled_from(["from", "to"]))},
)  # fmt: skip
luis_utterances = st.fixed_dictionaries(
    {"text": mostly(texts(30)), "intent": mostly(st.sampled_from(["Book", "None"])),
     "entities": mostly(st.lists(mostly(luis_entities), max_size=3))},
)  # fmt: skip
luis_files = st.fixed_dictionaries(
    {"luis_schema_version": mostly(st.sampled_from(["7.0.0", "3.2.0", "9.1"])),
     "utterances": mostly(st.lists(mostly(luis_utterances), max_size=3))},
    optional={
        "regex_features": json_values, "regex_entities": json_values,
        "closedLists": mostly(st.lists(st.fixed_dictionaries(
            {"name": json_values, "subLists": mostly(st.lists(st.fixed_dictionaries(
                {"canonicalForm": json_values, "list": json_values}), max_size=2))}),
            max_size=2)),
    },
)  # fmt: skip
wit_entities = st.fixed_dictionaries(
    {"entity": mostly(st.sampled_from(["wit$datetime:datetime", "who", ":", "a:"])),
     "start": positions, "end": positions},
)  # fmt: skip
wit_files = st.fixed_dictionaries(
    {"utterances": mostly(st.lists(mostly(st.fixed_dictionaries(
        {"text": mostly(texts(30))},
        optional={"intent": json_values,
                  "entities": mostly(st.lists(mostly(wit_entities), max_size=3))},
    )), max_size=3))}
)  # fmt: skip
chunks = st.fixed_dictionaries(
    {"text": mostly(texts(10))},
    optional={"alias": json_values, "meta": mostly(st.sampled_from(["@city", "@sys.ignore"]))},
)
usersays = mostly(st.lists(mostly(st.fixed_dictionaries(
    {"data": mostly(st.lists(mostly(chunks), max_size=4))})), max_size=3))  # fmt: skip
entries = mostly(st.lists(mostly(st.fixed_dictionaries(
    {"value": json_values}, optional={"synonyms": json_values})), max_size=3))  # fmt: skip


def _read_or_refuse(path: Path) -> None:
    try:
        found = read_json_nlu(path)
    except ProjectError as error:
        assert (
            str(path.name) in str(error) or "_usersays_" in str(error) or "_entries_" in str(error)
        )
        return
    if found is not None:
        for example in found.examples:
            for entity in example.entities:
                assert 0 <= entity.start < entity.end <= len(example.text)
                assert entity.value == example.text[entity.start : entity.end]


@FUZZ
@given(content=luis_files | wit_files)
def test_random_luis_and_wit_exports_read_or_are_refused_clearly(
    tmp_path_factory: pytest.TempPathFactory, content: Any
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "export.json"
    path.write_text(json.dumps(content))
    _read_or_refuse(path)


@FUZZ
@given(
    intent=mostly(st.fixed_dictionaries({"name": mostly(st.just("book")), "responses": json_values})),
    examples=usersays,
    entity=mostly(st.fixed_dictionaries(
        {"name": mostly(st.just("city")), "isEnum": json_values, "isRegexp": json_values})),
    values=entries,
)  # fmt: skip
def test_random_dialogflow_agents_read_or_are_refused_clearly(
    tmp_path_factory: pytest.TempPathFactory, intent: Any, examples: Any, entity: Any, values: Any
) -> None:
    agent = tmp_path_factory.mktemp("agent")
    write(agent / "intents" / "book.json", intent)
    write(agent / "intents" / "book_usersays_en.json", examples)
    write(agent / "entities" / "city.json", entity)
    write(agent / "entities" / "city_entries_en.json", values)
    for path in sorted(agent.rglob("*.json")):
        _read_or_refuse(path)
