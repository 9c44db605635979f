from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.errors import ProjectError
from chatbot.project.yaml_io import YamlList, YamlMap, line_of, load_yaml, load_yaml_text, to_plain


def test_mappings_and_lists_carry_lines() -> None:
    data = load_yaml_text("a: 1\nb:\n  - x\n  - y: 2\n    z: 3\n")
    assert isinstance(data, YamlMap)
    assert data == {"a": 1, "b": ["x", {"y": 2, "z": 3}]}
    assert line_of(data, "a") == 1
    assert line_of(data, "b") == 2
    items = data["b"]
    assert isinstance(items, YamlList)
    assert [line_of(items, 0), line_of(items, 1)] == [3, 4]
    assert line_of(items[1], "z") == 5
    assert line_of(items[1]) == 4


def test_line_of_plain_values_is_none() -> None:
    assert line_of({"a": 1}, "a") is None
    assert line_of([1], 0) is None
    assert to_plain(load_yaml_text("a: [1, {b: 2}]")) == {"a": [1, {"b": 2}]}
    assert type(to_plain(load_yaml_text("a: [1]"))["a"]) is list


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("true", True),
        ("False", False),
        ("010", 10),
        ("0o17", 15),
        ("0x1f", 31),
        ("1:20", "1:20"),
        ("2021-01-01", "2021-01-01"),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("~", None),
        ("null", None),
        ("'010'", "010"),
    ],
)
def test_scalars_follow_yaml_1_2_like_rasa(text: str, expected: object) -> None:
    assert load_yaml_text(f"v: {text}")["v"] == expected


def test_merge_keys_may_be_overridden() -> None:
    data = load_yaml_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert data["other"] == {"x": 1, "y": 3}


def test_empty_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.yml"
    path.write_text("# nothing\n", encoding="utf-8")
    assert load_yaml(path) is None


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("a: 1\nb: [1, 2\n", 3, "YAML syntax error"),
        ("a:\n  b: 1\n c: 2\n", 3, "YAML syntax error"),
        ("intents:\n  - greet\n\tbad: 1\n", 3, "YAML syntax error"),
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key (key 'a')"),
        ("x:\n  - k: 1\n    k: 2\n", 3, "duplicate key (key 'k')"),
    ],
)
def test_yaml_errors_name_file_and_line(
    tmp_path: Path, content: str, line: int, needle: str
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        load_yaml(path)
    assert info.value.file == str(path)
    assert info.value.line == line
    assert f"broken.yml:{line}:" in str(info.value)
    assert needle in str(info.value)


def test_duplicate_key_names_the_first_line() -> None:
    with pytest.raises(ProjectError, match="already set on line 1"):
        load_yaml_text("a: 1\na: 2\n", file="d.yml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_yaml(tmp_path / "nope.yml")
    assert "nope.yml" in str(info.value)
    assert "file not found" in str(info.value)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes("a: 1\nb: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ProjectError) as info:
        load_yaml(path)
    assert info.value.line == 2
    assert "latin1.yml:2:" in str(info.value)
    assert "UTF-8" in str(info.value)


def test_utf8_bom_and_emoji(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes("\ufeffa: héllo 👋\n".encode())
    assert load_yaml(path) == {"a": "héllo 👋"}


def laughs(levels: int) -> str:
    """A "billion laughs": each anchor a list of nine aliases of the one before."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_aliases_that_stand_for_millions_of_values_are_refused() -> None:
    assert len(load_yaml_text(laughs(3))["a2"]) == 9  # 729 values: fine
    # Named where the value that stands for too many alone is: the seventh anchor's list.
    with pytest.raises(ProjectError, match=r"domain.yml:7: .* stand for 54,481,013 values"):
        load_yaml_text(laughs(8), file="domain.yml")


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(ProjectError, match=r"nlu.yml:2: an alias refers to an anchor it is inside"):
        load_yaml_text("version: '3.1'\nloop: &me [1, {again: *me}]\n", file="nlu.yml")


def test_shared_anchors_are_read_as_written() -> None:
    data = load_yaml_text("a: &a [1, 2]\nb: *a\nc: {x: *a, y: *a}\n")
    assert to_plain(data) == {"a": [1, 2], "b": [1, 2], "c": {"x": [1, 2], "y": [1, 2]}}


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "1" * 4301])
def test_a_number_too_long_for_python_is_an_error_naming_its_line(number: str) -> None:
    """int() refuses more than 4,300 digits (a ValueError, a traceback for the user; a 500 for
    a /model/train body); hexadecimal and octal ones have no such limit."""
    with pytest.raises(ProjectError, match=r"^domain\.yml:3: a number of \d+ digits"):
        load_yaml_text(
            f"session_config:\n  carry_over_slots_to_new_session: true\n  x: {number}\n",
            file="domain.yml",
        )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("initial_value: !!binary aGVsbG8=\n", "binary"),
        ("values: !!set {a, b}\n", "set"),
        ("pairs: !!pairs [a: 1, b: 2]\n", "pairs"),
        ("when: !!timestamp 2026-12-08\n", "timestamp"),
    ],
)
def test_yaml_types_json_has_no_value_for_are_errors_naming_the_line(text: str, kind: str) -> None:
    """Read, they became bytes or sets, and training stopped with a traceback when the model
    file (JSON) was written."""
    with pytest.raises(ProjectError) as raised:
        load_yaml_text("slots:\n  s:\n    " + text, file="domain.yml")
    assert (raised.value.file, raised.value.line) == ("domain.yml", 3)
    assert f"a !!{kind} value is not read" in str(raised.value)
    assert load_yaml_text("when: 2026-12-08\n") == {"when": "2026-12-08"}  # plain: text
