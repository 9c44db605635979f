"""``chatbot data convert nlu``: Rasa's NLU JSON to YAML and back, nothing lost; a mistake in the
JSON names the file and the place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.errors import ProjectError
from chatbot.project.nlu_json import read_rasa_json
from chatbot.project.nlu_reader import read_nlu
from tests.test_cli import chatbot

RASA_JSON = {
    "rasa_nlu_data": {
        "common_examples": [
            {"text": "hello", "intent": "greet", "entities": []},
            {
                "text": "fly from NYC to Berlin",
                "intent": "book",
                "entities": [
                    {"start": 9, "end": 12, "value": "New York", "entity": "city", "role": "from"},
                    {"start": 16, "end": 22, "value": "Berlin", "entity": "city", "role": "to"},
                ],
            },
            {
                "text": "two large pizzas",
                "intent": "order",
                "entities": [
                    {"start": 0, "end": 3, "value": "two", "entity": "count", "group": "1"}
                ],
            },
        ],
        "entity_synonyms": [{"value": "Berlin", "synonyms": ["berlin city"]}],
        "regex_features": [{"name": "zipcode", "pattern": "[0-9]{5}"}],
        "lookup_tables": [{"name": "city", "elements": ["Berlin", "Paris"]}],
    }
}


def _summary(data: object) -> object:
    examples = [
        (
            e.text,
            e.intent,
            [(a.start, a.end, a.value, a.entity, a.role, a.group) for a in e.entities],
        )
        for e in data.examples  # type: ignore[attr-defined]
    ]
    return (
        examples,
        dict(sorted(data.synonyms.items())),  # type: ignore[attr-defined]
        [(r.name, r.pattern) for r in data.regexes],  # type: ignore[attr-defined]
        [(t.name, t.elements) for t in data.lookups],  # type: ignore[attr-defined]
    )


def test_json_to_yaml_and_back(tmp_path: Path) -> None:
    source = tmp_path / "nlu.json"
    source.write_text(json.dumps(RASA_JSON))
    from_json = read_rasa_json(source)
    assert from_json.synonyms == {"berlin city": "Berlin", "nyc": "New York"}

    result = chatbot(
        "data", "convert", "nlu", "--data", str(source), "--out", str(tmp_path / "nlu.yml")
    )
    assert result.returncode == 0, result.stderr
    assert "3 examples written" in result.stdout
    text = (tmp_path / "nlu.yml").read_text()
    assert '[NYC]{"entity": "city", "role": "from", "value": "New York"}' in text
    from_yaml = read_nlu(tmp_path / "nlu.yml", base_dirs=[tmp_path])
    assert _summary(from_yaml) == _summary(from_json)

    result = chatbot(
        "data", "convert", "nlu", "--data", str(tmp_path / "nlu.yml"), "--out",
        str(tmp_path / "back.json"), "-f", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _summary(read_rasa_json(tmp_path / "back.json")) == _summary(from_json)

    again = chatbot(
        "data", "convert", "nlu", "--data", str(source), "--out", str(tmp_path / "nlu.yml")
    )
    assert again.returncode == 1 and "exists already" in again.stderr


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "not valid JSON"),
        ('{"common_examples": []}', "'rasa_nlu_data'"),
        ({"common_examples": [{"intent": "greet"}]}, "common_examples[0]: 'text' must be a text"),
        (
            {"common_examples": [{"text": "hi", "intent": "greet",
                                  "entities": [{"start": 0, "end": 9, "entity": "x"}]}]},
            "common_examples[0].entities[0]: 'start' 0 and 'end' 9 are not a span",
        ),
        ({"entity_synonyms": [{"value": "x", "synonyms": "y"}]}, "'synonyms' must be a list"),
        ({"regex_features": [{"name": "z"}]}, "regex_features[0]: 'pattern' must be a text"),
    ],
)  # fmt: skip
def test_mistakes_name_the_file_and_place(tmp_path: Path, content: object, said: str) -> None:
    source = tmp_path / "bad.json"
    body = content if isinstance(content, str) else json.dumps({"rasa_nlu_data": content})
    source.write_text(body)
    with pytest.raises(ProjectError) as raised:
        read_rasa_json(source)
    assert said in str(raised.value) and "bad.json" in str(raised.value)
    result = chatbot(
        "data", "convert", "nlu", "--data", str(source), "--out", str(tmp_path / "o.yml")
    )
    assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.stderr


def test_a_lone_surrogate_is_named_where_it_is(tmp_path: Path) -> None:
    """JSON's `\\ud800` escape decodes to no text: validation passed it and training failed at a
    traceback (the digest of the data could not encode it). A pair stays one character."""
    path = tmp_path / "nlu.json"
    example = {"intent": "greet", "entities": []}
    body = {"rasa_nlu_data": {"common_examples": [{**example, "text": "hi \\ud83d\\ude00"}]}}
    path.write_text(json.dumps(body).replace("\\\\", "\\"))
    assert [e.text for e in read_rasa_json(path).examples] == ["hi \U0001f600"]
    path.write_text(path.read_text().replace("\\ude00", ""))
    with pytest.raises(ProjectError) as raised:
        read_rasa_json(path)
    assert raised.value.file == str(path)
    assert "'common_examples' -> [0] -> 'text' holds a lone surrogate" in str(raised.value)
