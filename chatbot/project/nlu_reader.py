"""Reading ``nlu:`` blocks (Rasa 3.x nlu.yml): intent examples with entity annotations, synonyms,
regexes and lookup tables.

Annotations are Rasa's: ``[text](entity)``, ``[text](entity:value)``,
``[text]{"entity": "e", "role": "r", "group": "g", "value": "v"}`` and
``[text][{"entity": "a"}, {"entity": "b"}]``. The markup is removed from the example's text and
each entity keeps its character offsets in the plain text; a ``value`` other than the annotated
text makes that text a synonym of the value. What Rasa's regex does not read as an annotation
(``[text] (entity)`` with a space, ``[](entity)``, ``[text](entity`` unclosed, ``[text]()``,
``[text](entity:)``, ``[text]{}``) Rasa keeps as plain text without a word: here it is plain text
too, with a warning, for it is likely a typo that would leave the entity unlearned unnoticed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.file_input import DATA_FILE_LIMIT, file_problem, read_bytes
from chatbot.paths import exists, is_file
from chatbot.project.domain import Origin
from chatbot.project.format_version import check_format_version
from chatbot.project.training_data import (
    EntityAnnotation,
    LookupTable,
    NLUData,
    NLUExample,
    RegexFeature,
)
from chatbot.project.yaml_io import (
    decode_text,
    describe_type,
    expect,
    line_of,
    load_yaml,
    scalar_text,
    unknown_keys,
)

logger = logging.getLogger(__name__)

ENTITY_REGEX = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)"
    r"|\{(?P<dict>[^}]+?)\}"
    r"|\[(?P<list>.*?)\])"
)
# What is left of an annotation the regex could not read: ``[Ann](name``, ``[](name)``, ...
_BROKEN_ANNOTATION = re.compile(r"\[[^\]]*\]\s*[({]")
# One with blanks before its ``(`` or ``{`` (``[luxury] (budget)``), up to the closing bracket:
# Rasa's regex needs ``](`` and ``]{`` adjacent, so Rasa reads it as plain text, without a word.
_SPACED_ANNOTATION = re.compile(r"\[[^\]]*\]\s+(?:\([^()]*\)|\{[^{}]*\}|[({])")
# How much of an unclosed annotation a message shows after its ``(`` or ``{``.
_SHOWN_UNCLOSED = 30
_ENTITY_DICT_KEYS = ("entity", "value", "role", "group")
_NLU_KINDS = ("intent", "synonym", "regex", "lookup")


@dataclass(frozen=True)
class AnnotatedText:
    """An example with its markup removed, its entities and the synonyms its values define."""

    text: str
    entities: tuple[EntityAnnotation, ...] = ()
    synonyms: dict[str, str] = field(default_factory=dict)


def parse_annotated_text(
    raw: str, *, file: str | None = None, line: int | None = None, strict: bool = True
) -> AnnotatedText:
    """Remove Rasa's entity markup from ``raw``; markup Rasa rejects (invalid JSON in ``{...}``,
    an annotation without ``"entity"``) is a ``ProjectError``.

    Markup Rasa's regex does not read stays plain text, as in Rasa, with a warning; ``strict``
    makes it an error, except a space before ``(`` or ``{``, for text typed in answer to a request
    for markup (interactive learning), where plain text is never what was meant.
    """
    if "[" not in raw:
        return AnnotatedText(raw)
    pieces: list[str] = []
    entities: list[EntityAnnotation] = []
    synonyms: dict[str, str] = {}
    position = 0
    length = 0
    for match in ENTITY_REGEX.finditer(raw):
        before = raw[position : match.start()]
        _check_unread(before, raw, file=file, line=line, strict=strict)
        pieces.append(before)
        length += len(before)
        covered = match.group("text")
        start, end = length, length + len(covered)
        for spec in _entity_specs(match, raw, file=file, line=line):
            value = scalar_text(spec["value"]) if spec.get("value") is not None else covered
            entities.append(
                EntityAnnotation(
                    start=start,
                    end=end,
                    value=value,
                    entity=spec["entity"],
                    role=spec.get("role"),
                    group=spec.get("group"),
                )
            )
            if value != covered:
                synonyms[covered.lower()] = value
        pieces.append(covered)
        length = end
        position = match.end()
    rest = raw[position:]
    _check_unread(rest, raw, file=file, line=line, strict=strict)
    pieces.append(rest)
    return AnnotatedText("".join(pieces), tuple(entities), synonyms)


def _check_unread(
    segment: str, raw: str, *, file: str | None, line: int | None, strict: bool
) -> None:
    """Warn of what looks like an annotation in ``segment`` (text between annotations): Rasa's
    regex did not read it, so it is plain text, as in Rasa, which says nothing; but it is likely a
    typo, and the entity would go unlearned unnoticed. ``strict``: an error, but for a space."""
    for broken in _BROKEN_ANNOTATION.finditer(segment):
        unread = _unread_annotation(segment, broken)
        if strict and not unread.spaced:
            raise ProjectError(
                f"malformed entity annotation {unread.problem} in {raw!r}",
                file=file,
                line=line,
                value=unread.fragment,
                hint=unread.hint,
            )
        warning = ProjectError(
            f'"{unread.fragment}" looks like an entity annotation {unread.problem}; '
            "it is read as plain text",
            file=file,
            line=line,
            hint=unread.hint,
        )
        logger.warning("%s", warning)


class _Unread(NamedTuple):
    """An annotation Rasa's regex does not read: what it looks like, what keeps the regex from
    reading it, and how to write it."""

    fragment: str
    problem: str
    hint: str
    spaced: bool = False


def _unread_annotation(segment: str, broken: re.Match[str]) -> _Unread:
    """What is wrong with the annotation ``broken`` found in ``segment``, to say it."""
    start, after = broken.start(), broken.end()  # ``after``: just past its ``(`` or ``{``
    text = segment[start + 1 : segment.index("]", start)]
    opener = segment[after - 1]
    closer = ")" if opener == "(" else "}"
    close = segment.find(closer, after)
    if close >= 0:
        fragment = segment[start : close + 1]
    else:
        shown = segment[after : after + _SHOWN_UNCLOSED].rstrip()
        more = "..." if len(segment) - after > _SHOWN_UNCLOSED else ""
        fragment = segment[start:after] + shown + more
    spaced = _SPACED_ANNOTATION.match(segment, start)
    if not text:
        words = "[words]" + re.sub(r"^\[\]\s*", "", fragment) if close >= 0 else "[words](entity)"
        hint = f"Put the words it marks between '[' and ']': {words}"
        return _Unread(fragment, "without text between '[' and ']'", hint)
    if spaced is not None:
        fragment = spaced.group(0)
        joined = re.sub(r"\]\s+", "]", fragment, count=1)
        readable = ENTITY_REGEX.fullmatch(joined) is not None
        hint = f"Write {joined}" if readable else "Remove the space"
        return _Unread(
            fragment, f"with a space before '{opener}'", f"{hint} to annotate an entity", True
        )
    example = f"[{text}](entity)" if opener == "(" else f'[{text}]{{"entity": "name"}}'
    if close < 0:
        name = re.match(r"[^\s:()\[\]{}]+", segment[after:])
        if name is not None and opener == "(":
            example = f"[{text}]({name.group(0)})"
        return _Unread(
            fragment, f"without its closing '{closer}'", f"End it with '{closer}': {example}"
        )
    content = segment[after:close]
    if not content:
        return _Unread(
            fragment, f"with nothing between '{opener}' and '{closer}'", f"Write {example}"
        )
    if content.startswith(":"):
        return _Unread(
            fragment, "without an entity name", f"Name the entity: [{text}](entity{content})"
        )
    if content.endswith(":"):
        entity = content[:-1]
        hint = f"Write [{text}]({entity}) or [{text}]({entity}:value)"
        return _Unread(fragment, "with nothing after ':'", hint)
    # Not met: with text, a closed ``(...)`` or ``{...}`` is read but for the cases above.
    return _Unread(fragment, "that cannot be read", f"Write {example}")


def _entity_specs(
    match: re.Match[str], raw: str, *, file: str | None, line: int | None
) -> list[dict[str, Any]]:
    if match.group("entity") is not None:
        spec: dict[str, Any] = {"entity": match.group("entity").strip()}
        if match.group("value") is not None:
            spec["value"] = match.group("value").strip()
        return [spec]
    source = "{" + match.group("dict") + "}" if match.group("dict") is not None else None
    if source is None:
        source = "[" + match.group("list") + "]"
    try:
        parsed = json.loads(source)
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"malformed entity annotation in {raw!r}: {source} is not valid JSON ({e.msg})",
            file=file,
            line=line,
            hint='Write e.g. [Berlin]{"entity": "city", "role": "to"}',
        ) from None
    specs = parsed if isinstance(parsed, list) else [parsed]
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
            raise ProjectError(
                f'malformed entity annotation in {raw!r}: each annotation needs "entity"',
                file=file,
                line=line,
                value=source,
            )
        for key, value in spec.items():
            if key not in _ENTITY_DICT_KEYS:
                raise ProjectError(
                    f"unknown key in the entity annotation {source}",
                    file=file,
                    line=line,
                    key=str(key),
                    hint=f"Valid keys: {', '.join(_ENTITY_DICT_KEYS)}",
                )
            if key in ("role", "group") and not isinstance(value, str):
                raise ProjectError(
                    f"'{key}' in the entity annotation {source} must be text",
                    file=file,
                    line=line,
                    key=key,
                )
    return specs


# --- nlu: blocks --------------------------------------------------------------------------------


def read_nlu(path: Path, *, base_dirs: Sequence[Path] = ()) -> NLUData:
    """The ``nlu:`` part of one training data file; every problem raised at once."""
    data = load_yaml(path)
    if not check_format_version(data, str(path)):  # newer than Rasa 3's: skipped, as Rasa does
        return NLUData()
    nlu = data.get("nlu") if isinstance(data, dict) else None
    result, errors = nlu_from_list(nlu, str(path), base_dirs=base_dirs, line=line_of(data, "nlu"))
    if errors:
        raise ProjectErrors(errors)
    return result


def nlu_from_list(
    items: Any,
    file: str | None,
    *,
    base_dirs: Sequence[Path] = (),
    line: int | None = None,
) -> tuple[NLUData, list[ProjectError]]:
    """Parsed ``nlu:`` entries; bad entries are errors, the rest are kept.

    ``base_dirs``: where a lookup table given as a file path is looked for (besides the folder of
    ``file``), e.g. the project root.
    """
    result = NLUData()
    if items is None:
        return result, []
    try:
        expect(items, list, what="'nlu'", file=file, line=line, key="nlu")
    except ProjectError as e:
        return result, [e]
    errors: list[ProjectError] = []
    for index, item in enumerate(items):
        item_line = line_of(items, index) or line
        try:
            errors.extend(_read_item(item, result, file=file, line=item_line, base_dirs=base_dirs))
        except ProjectError as e:
            errors.append(e)
    return result, errors


def _read_item(
    item: Any, result: NLUData, *, file: str | None, line: int | None, base_dirs: Sequence[Path]
) -> list[ProjectError]:
    expect(item, dict, what="each 'nlu' entry", file=file, line=line)
    kinds = [k for k in _NLU_KINDS if k in item]
    if len(kinds) != 1:
        raise ProjectError(
            "each 'nlu' entry needs exactly one of intent, synonym, regex or lookup"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            file=file,
            line=line,
        )
    kind = kinds[0]
    bad = unknown_keys(item, (kind, "examples", "metadata"), file=file, what=f"a {kind} entry")
    if bad:
        raise bad[0]
    name = item[kind]
    if not isinstance(name, str) or not name.strip():
        raise ProjectError(
            f"the {kind} name must be text, found {describe_type(name)}",
            file=file,
            line=line_of(item, kind),
            key=kind,
        )
    name = name.strip()
    if "examples" not in item or item["examples"] is None:
        raise ProjectError(f"{kind} '{name}' has no examples", file=file, line=line, key="examples")
    examples_line = line_of(item, "examples")
    errors: list[ProjectError] = []
    if kind == "lookup" and _looks_like_path(item["examples"]):
        lines = _lookup_file(item["examples"], file=file, line=examples_line, base_dirs=base_dirs)
    else:
        lines = _example_lines(item["examples"], name, file=file, line=examples_line, errors=errors)
    origin = Origin(file, line)
    if kind == "intent":
        for text, text_line in lines:
            try:
                annotated = parse_annotated_text(text, file=file, line=text_line, strict=False)
            except ProjectError as e:
                errors.append(e)
                continue
            result.examples.append(
                NLUExample(annotated.text, name, annotated.entities, Origin(file, text_line))
            )
            result.synonyms.update(annotated.synonyms)
    elif kind == "synonym":
        for text, _ in lines:
            result.synonyms[text.lower()] = name
    elif kind == "regex":
        for text, text_line in lines:
            try:
                re.compile(text)
            except re.error as e:
                errors.append(
                    ProjectError(
                        f"regex '{name}' has an invalid pattern: {e.msg}",
                        file=file,
                        line=text_line,
                        value=text,
                    )
                )
                continue
            result.regexes.append(RegexFeature(name, text, Origin(file, text_line)))
    else:
        result.lookups.append(LookupTable(name, tuple(text for text, _ in lines), origin))
    return errors


def _example_lines(
    examples: Any, name: str, *, file: str | None, line: int | None, errors: list[ProjectError]
) -> list[tuple[str, int | None]]:
    """(text, line) of each example, from a ``|`` block of ``- `` lines or a list."""
    found: list[tuple[str, int | None]] = []
    if isinstance(examples, str):
        block = "\n" in examples  # a ``|`` block starts on the line after ``examples:``
        for offset, text_line in enumerate(examples.splitlines()):
            at = (line + 1 + offset) if (line is not None and block) else line
            stripped = text_line.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):
                # As Rasa: a warning, and the line is left out (a wrapped example, say).
                warning = ProjectError(
                    f"an example of '{name}' does not start with '- ' and is left out",
                    file=file,
                    line=at,
                    value=stripped,
                    hint="Write each example on its own line as '- example'",
                )
                logger.warning("%s", warning)
                continue
            text = stripped[1:].strip()
            if text:
                found.append((text, at))
        return found
    expect(examples, list, what=f"the examples of '{name}'", file=file, line=line, key="examples")
    for index, example in enumerate(examples):
        at = line_of(examples, index) or line
        if isinstance(example, dict):
            bad = unknown_keys(example, ("text", "metadata"), file=file, what="an example")
            if bad:
                errors.extend(bad)
                continue
            example = example.get("text")
        if not isinstance(example, str):
            errors.append(
                ProjectError(
                    f"an example of '{name}' must be text, found {describe_type(example)}",
                    file=file,
                    line=at,
                    key="text",
                )
            )
            continue
        if example.strip():
            found.append((example.strip(), at))
    return found


def _looks_like_path(examples: Any) -> bool:
    if not isinstance(examples, str):
        return False
    text = examples.strip()
    return bool(text) and "\n" not in text and not text.startswith("-")


def _lookup_file(
    value: str, *, file: str | None, line: int | None, base_dirs: Sequence[Path]
) -> list[tuple[str, int | None]]:
    relative = Path(value.strip())
    candidates = [relative] if relative.is_absolute() else []
    if not relative.is_absolute():
        candidates += [base / relative for base in base_dirs]
        if file is not None:
            candidates.append(Path(file).parent / relative)
    # The first file of those places; where none is a file, the first thing that is there
    # (a folder, a device) is named for what it is.
    found = [c for c in candidates if is_file(c)] or [c for c in candidates if exists(c)]
    if not found:
        raise ProjectError(
            "lookup table file not found",
            file=file,
            line=line,
            key="examples",
            value=value,
            hint="Give a path relative to the project root, or list the elements as "
            "'- element' lines",
        )
    try:
        raw = read_bytes(found[0], limit=DATA_FILE_LIMIT, what="a lookup table file")
    except OSError as e:
        raise ProjectError(
            f"lookup table file {found[0]}: {file_problem(e)}",
            file=file,
            line=line,
            key="examples",
            value=value,
        ) from None
    elements = []
    for text in decode_text(raw, file=str(found[0])).splitlines():
        element = text.strip()
        if element.startswith("- "):
            element = element[2:].strip()
        if element:
            elements.append((element, line))
    return elements
