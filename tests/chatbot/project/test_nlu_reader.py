from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.project.nlu_reader import nlu_from_list, parse_annotated_text, read_nlu
from chatbot.project.training_data import EntityAnnotation
from chatbot.project.yaml_io import load_yaml_text

from .conftest import write


@pytest.mark.parametrize(
    ("raw", "text", "entities", "synonyms"),
    [
        ("hello", "hello", [], {}),
        (
            "fly to [Berlin](city) now",
            "fly to Berlin now",
            [EntityAnnotation(7, 13, "Berlin", "city")],
            {},
        ),
        (
            "[NYC](city:New York) and [LA](city)",
            "NYC and LA",
            [EntityAnnotation(0, 3, "New York", "city"), EntityAnnotation(8, 10, "LA", "city")],
            {"nyc": "New York"},
        ),
        (
            'from [Paris]{"entity": "city", "role": "from", "group": "1"} to '
            '[Rome]{"entity": "city", "role": "to", "value": "Roma"}',
            "from Paris to Rome",
            [
                EntityAnnotation(5, 10, "Paris", "city", "from", "1"),
                EntityAnnotation(14, 18, "Roma", "city", "to"),
            ],
            {"rome": "Roma"},
        ),
        (
            'a [big pizza][{"entity": "size"}, {"entity": "food", "value": "pizza"}]',
            "a big pizza",
            [
                EntityAnnotation(2, 11, "big pizza", "size"),
                EntityAnnotation(2, 11, "pizza", "food"),
            ],
            {"big pizza": "pizza"},
        ),
        ("[x] marks the spot", "[x] marks the spot", [], {}),
    ],
)
def test_annotations(
    raw: str, text: str, entities: list[EntityAnnotation], synonyms: dict[str, str]
) -> None:
    parsed = parse_annotated_text(raw)
    assert parsed.text == text
    assert list(parsed.entities) == entities
    assert parsed.synonyms == synonyms
    for entity in parsed.entities:
        assert parsed.text[entity.start : entity.end] in raw


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("to [Berlin](city", "malformed entity annotation without its closing ')'"),
        ("to [](city)", "malformed entity annotation without text between '[' and ']'"),
        ('to [Berlin]{"entity": city}', "not valid JSON"),
        ('to [Berlin]{"role": "to"}', 'needs "entity"'),
        ('to [Berlin]{"entity": "city", "colour": "red"}', "(key 'colour')"),
    ],
)
def test_malformed_annotations(raw: str, needle: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse_annotated_text(raw, file="nlu.yml", line=7)
    assert "nlu.yml:7:" in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("raw", "entities", "fragment", "hint"),
    [
        (
            "I live in [Berlin](city",
            [],
            "\"[Berlin](city\" looks like an entity annotation without its closing ')'",
            "End it with ')': [Berlin](city)",
        ),
        (
            "from [](city) to [Rome](city)",
            [("Rome", "city")],
            "\"[](city)\" looks like an entity annotation without text between '[' and ']'",
            "Put the words it marks between '[' and ']': [words](city)",
        ),
        (
            "to [Berlin]()",
            [],
            "\"[Berlin]()\" looks like an entity annotation with nothing between '(' and ')'",
            "Write [Berlin](entity)",
        ),
        (
            "to [Berlin](:Berlin City)",
            [],
            '"[Berlin](:Berlin City)" looks like an entity annotation without an entity name',
            "Name the entity: [Berlin](entity:Berlin City)",
        ),
        (
            "to [Berlin](city:)",
            [],
            "\"[Berlin](city:)\" looks like an entity annotation with nothing after ':'",
            "Write [Berlin](city) or [Berlin](city:value)",
        ),
        (
            "to [Berlin]{}",
            [],
            "\"[Berlin]{}\" looks like an entity annotation with nothing between '{' and '}'",
            'Write [Berlin]{"entity": "name"}',
        ),
        (
            'to [Berlin]{"entity": "city", "role": "destination", "group": "1"',
            [],
            '"[Berlin]{"entity": "city", "role": "des..." looks like an entity annotation '
            "without its closing '}'",
            'End it with \'}\': [Berlin]{"entity": "name"}',
        ),
    ],
)
def test_an_annotation_rasa_does_not_read_is_plain_text_with_a_warning(
    caplog: pytest.LogCaptureFixture,
    raw: str,
    entities: list[tuple[str, str]],
    fragment: str,
    hint: str,
) -> None:
    """Rasa's ENTITY_REGEX needs text in ``[...]``, a closed ``(entity)`` or
    ``(entity:value)`` with both parts, or a closed non-empty ``{...}``: what lacks one is not
    matched, and Rasa keeps it as written, without a word. Here too, with a warning."""
    with caplog.at_level(logging.WARNING):
        parsed = parse_annotated_text(raw, file="nlu.yml", line=7, strict=False)
    assert parsed.text == raw.replace("[Rome](city)", "Rome")  # the well-formed one is read
    assert [(parsed.text[e.start : e.end], e.entity) for e in parsed.entities] == entities
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning == f"nlu.yml:7: {fragment}; it is read as plain text. {hint}"


@pytest.mark.parametrize(
    ("raw", "entities", "fragment", "hint"),
    [
        (
            "find me [luxury] (budget_range) places",
            [],
            "\"[luxury] (budget_range)\" looks like an entity annotation with a space before '('",
            "Write [luxury](budget_range) to annotate an entity",
        ),
        (
            'to [Berlin]  {"entity": "city"} or [Rome](city)',
            [("Rome", "city")],
            '"[Berlin]  {"entity": "city"}" looks like an entity annotation with a space '
            "before '{'",
            'Write [Berlin]{"entity": "city"} to annotate an entity',
        ),
        (
            "to [Berlin] (city",
            [],
            "\"[Berlin] (\" looks like an entity annotation with a space before '('",
            "Remove the space to annotate an entity",
        ),
    ],
)
def test_an_annotation_with_a_space_before_its_bracket_is_plain_text_with_a_warning(
    caplog: pytest.LogCaptureFixture,
    raw: str,
    entities: list[tuple[str, str]],
    fragment: str,
    hint: str,
) -> None:
    """Rasa's ENTITY_REGEX needs ``](`` and ``]{`` adjacent: it keeps such text as written and
    says nothing; a likely typo deserves a word, not a refusal to train."""
    with caplog.at_level(logging.WARNING):
        parsed = parse_annotated_text(raw, file="nlu.yml", line=7)
    plain = raw.replace("[Rome](city)", "Rome")  # the well-formed one is still read
    assert parsed.text == plain
    assert [(parsed.text[e.start : e.end], e.entity) for e in parsed.entities] == entities
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"nlu.yml:7: {fragment}; it is read as plain text")
    assert warning.endswith(hint)


def test_an_unread_annotation_in_a_file_is_read_and_named_by_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``data validate`` and ``train`` go on, as in Rasa; what Rasa rejects (invalid JSON in
    ``{...}``) stays an error."""
    nlu_file = write(
        tmp_path / "nlu.yml",
        """\
        nlu:
        - intent: inform
          examples: |
            - I live in [Berlin](city
            - I live in [](city)
            - I live in [Rome](city)
            - I live in [Oslo]{"entity": city}
        """,
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ProjectErrors) as info:
        read_nlu(nlu_file)
    [error] = info.value.errors
    assert str(error).startswith(f"{nlu_file}:7: malformed entity annotation")
    assert "not valid JSON" in str(error)
    warnings = [r.getMessage() for r in caplog.records]
    assert [w.split(" looks like")[0] for w in warnings] == [
        f'{nlu_file}:4: "[Berlin](city"',
        f'{nlu_file}:5: "[](city)"',
    ]
    data = load_yaml_text(nlu_file.read_text(), file=str(nlu_file))
    nlu, _ = nlu_from_list(data["nlu"], str(nlu_file))
    assert [e.text for e in nlu.examples] == [
        "I live in [Berlin](city",
        "I live in [](city)",
        "I live in Rome",
    ]
    assert [e.entities for e in nlu.examples[:2]] == [(), ()]


def test_a_spaced_annotation_in_a_file_is_read_and_named_by_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The travel-assistant project's ``find me [luxury] (budget_range) places`` trains in
    Rasa; here too, with a warning at its line."""
    nlu_file = write(
        tmp_path / "nlu.yml",
        """\
        nlu:
        - intent: search
          examples: |
            - find me [cheap](budget_range) places
            - find me [luxury] (budget_range) places
        """,
    )
    with caplog.at_level(logging.WARNING):
        nlu = read_nlu(nlu_file)
    assert [e.text for e in nlu.examples] == [
        "find me cheap places",
        "find me [luxury] (budget_range) places",
    ]
    assert nlu.examples[1].entities == ()
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f'{nlu_file}:5: "[luxury] (budget_range)" looks like an entity')


NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello [Ann](name)

    - hey there
- intent: faq/ask_name
  metadata:
    sentiment: neutral
  examples:
    - text: what is your name
      metadata: {a: 1}
    - text: |
        who are you
- synonym: New York
  examples: |
    - NYC
    - big apple
- regex: zipcode
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Berlin
    - Paris
"""


def test_reads_every_block() -> None:
    data = load_yaml_text(NLU, file="nlu.yml")
    nlu, errors = nlu_from_list(data["nlu"], "nlu.yml")
    assert errors == []
    assert [(e.text, e.intent, e.origin.line) for e in nlu.examples] == [
        ("hi", "greet", 5),
        ("hello Ann", "greet", 6),
        ("hey there", "greet", 8),
        ("what is your name", "faq/ask_name", 13),
        ("who are you", "faq/ask_name", 15),
    ]
    assert nlu.examples[1].entities == (EntityAnnotation(6, 9, "Ann", "name"),)
    assert nlu.examples[3].base_intent == "faq"
    assert nlu.synonyms == {"nyc": "New York", "big apple": "New York"}
    assert [(r.name, r.pattern) for r in nlu.regexes] == [("zipcode", r"\d{5}")]
    assert [(t.name, t.elements) for t in nlu.lookups] == [("city", ("Berlin", "Paris"))]


def test_lookup_from_a_file(tmp_path: Path) -> None:
    write(tmp_path / "data" / "lookups" / "cities.txt", "Berlin\n\n- Paris\nRome\n")
    nlu_file = write(
        tmp_path / "data" / "nlu.yml",
        """\
        nlu:
        - lookup: city
          examples: data/lookups/cities.txt
        """,
    )
    nlu = read_nlu(nlu_file, base_dirs=[tmp_path])
    assert nlu.lookups[0].elements == ("Berlin", "Paris", "Rome")


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            """\
            nlu:
            - intent: greet
              examples: |
                - hi
                - to [Berlin]{"entity": "city", "role": 1}
            """,
            5,
            "'role' in the entity annotation",
        ),
        (
            """\
            nlu:
            - intent: greet
            """,
            2,
            "intent 'greet' has no examples",
        ),
        (
            """\
            nlu:
            - intnet: greet
              examples: |
                - hi
            """,
            2,
            "needs exactly one of intent, synonym, regex or lookup",
        ),
        (
            """\
            nlu:
            - intent: greet
              exmples: |
                - hi
            """,
            3,
            "(key 'exmples')",
        ),
        (
            """\
            nlu:
            - regex: zip
              examples: |
                - [0-9
            """,
            4,
            "invalid pattern",
        ),
        (
            """\
            nlu:
            - lookup: city
              examples: missing/cities.txt
            """,
            3,
            "lookup table file not found",
        ),
        (
            f"""\
            nlu:
            - lookup: city
              examples: {"x" * 300}
            """,  # longer than a file name may be: not a file either
            3,
            "lookup table file not found",
        ),
    ],
)
def test_nlu_errors(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path / "nlu.yml", text)
    with pytest.raises(ProjectErrors) as info:
        read_nlu(path)
    [error] = info.value.errors
    assert f"nlu.yml:{line}:" in str(error)
    assert needle in str(error)


def test_all_nlu_errors_are_collected() -> None:
    data = load_yaml_text(
        textwrap.dedent(
            """\
            nlu:
            - intent: a
              examples: |
                - [x]{e}
                - ok
                - [y][{"role": "r"}]
            - bogus: 1
            """
        ),
        file="nlu.yml",
    )
    nlu, errors = nlu_from_list(data["nlu"], "nlu.yml")
    assert [e.line for e in errors] == [4, 6, 7]
    assert [e.text for e in nlu.examples] == ["ok"]


def test_an_example_line_without_its_dash_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa (its test_multiline_intent_example_is_skipped_when_no_leading_symbol)."""
    nlu_file = tmp_path / "nlu.yml"
    nlu_file.write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n    - hey\n")
    with caplog.at_level(logging.WARNING):
        nlu = read_nlu(nlu_file)
    assert [e.text for e in nlu.examples] == ["hi", "hey"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert "nlu.yml:5: an example of 'greet' does not start with '- ' and is left out" in warning
