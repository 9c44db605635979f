"""NLU data written back as YAML reads back to the same examples (``chatbot data split nlu``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from chatbot.project.nlu_reader import read_nlu
from chatbot.project.nlu_writer import annotated_text, nlu_yaml
from chatbot.project.training_data import EntityAnnotation, NLUExample

NLU = textwrap.dedent(
    """\
    version: "3.1"
    nlu:
    - intent: inform
      examples: |
        - fly from [Berlin]{"entity": "city", "role": "from"} to [NYC]{"entity": "city", "role": "to", "value": "New York"}
        - [two](number) tickets for [Ünïcode](city) please
        - just text, no entities
    - intent: faq/ask_name
      examples: |
        - what is your name
    - synonym: New York
      examples: |
        - the big apple
    - regex: zipcode
      examples: |
        - \\d{5}
    - lookup: city
      examples: |
        - Paris
        - Rome
    """
)


def test_what_is_written_reads_back_the_same(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text(NLU, encoding="utf-8")
    data = read_nlu(source)
    again = tmp_path / "again.yml"
    again.write_text(nlu_yaml(data), encoding="utf-8")
    back = read_nlu(again)
    strip = lambda es: [(e.text, e.intent, e.entities) for e in es]  # noqa: E731
    assert strip(back.examples) == strip(data.examples)
    assert back.synonyms == data.synonyms
    assert [(r.name, r.pattern) for r in back.regexes] == [("zipcode", r"\d{5}")]
    assert [(t.name, t.elements) for t in back.lookups] == [("city", ("Paris", "Rome"))]


def test_markup_is_short_where_it_can_be() -> None:
    example = NLUExample(
        "to Berlin", "inform", (EntityAnnotation(3, 9, "Berlin", "city", group="1"),)
    )
    assert annotated_text(example) == 'to [Berlin]{"entity": "city", "group": "1"}'
    plain = NLUExample("to Berlin", "inform", (EntityAnnotation(3, 9, "Berlin", "city"),))
    assert annotated_text(plain) == "to [Berlin](city)"
