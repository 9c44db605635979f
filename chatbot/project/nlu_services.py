"""NLU training data exported from LUIS, Wit.ai and Dialogflow, read as Rasa 3 reads it.

Rasa takes such JSON files as training data wherever it takes NLU data (``data/``, ``rasa data
convert nlu``), telling them apart by their content (``guess_format``); so does
``read_json_nlu``:

- Rasa's own JSON (``rasa_nlu_data``): ``chatbot.project.nlu_json``;
- LUIS (``luis_schema_version``): ``utterances`` with their intent and entities (``startPos``,
  ``endPos`` inclusive, ``role``), ``regex_features`` that are ``activated`` and
  ``regex_entities`` as regexes; beyond Rasa, ``closedLists`` (list entities) become synonyms
  and a lookup table, which is what they are;
- Wit.ai (``utterances`` without a LUIS version): each utterance with ``entities`` (``name`` or
  ``name:role``; ``start``, ``end``), its ``intent`` or, without one, ``out_of_scope``;
- Dialogflow (an exported agent's folder): an intent file (``responses``) with its
  ``<name>_usersays_<language>.json`` examples, the entities of their annotated chunks
  (``alias``, else ``meta``; ``@sys.ignore`` left out); an entity file (``isEnum``) with its
  ``<name>_entries_<language>.json``: synonyms, and a lookup table of its values (regexes where
  ``isRegexp``). ``agent.json``, ``package.json`` and the example files themselves are read
  through the files they belong to.

Any other JSON file is not training data and is left alone, as Rasa leaves it. A file of one of
these formats with a mistake is a ``ProjectError`` naming the file and the place in it
(``utterances[3].entities[0]``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError
from chatbot.file_input import DATA_FILE_LIMIT, file_problem, read_bytes
from chatbot.json_input import lone_surrogate_at
from chatbot.project.domain import Origin
from chatbot.project.training_data import (
    EntityAnnotation,
    LookupTable,
    NLUData,
    NLUExample,
    RegexFeature,
)

logger = logging.getLogger(__name__)

RASA, LUIS, WIT = "rasa", "luis", "wit"
DIALOGFLOW_INTENT, DIALOGFLOW_ENTITY, DIALOGFLOW_PART = "dialogflow intent", "dialogflow entity", ""
NEWEST_LUIS_SCHEMA = 7  # the newest LUIS schema major version Rasa (and this reader) was tried on
OUT_OF_SCOPE = "out_of_scope"  # Rasa's intent of a Wit.ai utterance without one


def json_format(path: Path, content: Any) -> str | None:
    """Which training data format a JSON file holds (Rasa's ``guess_format``): one of the
    constants above, ``DIALOGFLOW_PART`` for a file read through another, None for none."""
    if "_usersays_" in path.name or "_entries_" in path.name:
        return DIALOGFLOW_PART
    if not isinstance(content, dict):
        return None
    if "rasa_nlu_data" in content:
        return RASA
    if "luis_schema_version" in content:
        return LUIS
    if "utterances" in content:
        return WIT
    if "supportedLanguages" in content or set(content) == {"version"}:
        return DIALOGFLOW_PART  # agent.json, package.json
    if "responses" in content:
        return DIALOGFLOW_INTENT
    if "isEnum" in content:
        return DIALOGFLOW_ENTITY
    return None


FORMATS = (
    "Rasa's JSON has 'rasa_nlu_data', LUIS' 'luis_schema_version', Wit.ai's 'utterances'; a "
    "Dialogflow agent's intents have 'responses', its entities 'isEnum'"
)


def is_nlu_json_part(path: Path) -> bool:
    """Whether a JSON file is part of an export that another file of it brings in (a
    Dialogflow agent's agent.json, package.json, examples and entries)."""
    try:
        return json_format(path, read_json(path)) == DIALOGFLOW_PART
    except ProjectError:
        return False


def read_json(path: Path) -> Any:
    """A JSON file's content (a path that is no regular file, a device or a named pipe, or one
    past ``DATA_FILE_LIMIT`` is a ``ProjectError``, as is text that is not JSON)."""
    try:
        raw = read_bytes(path, limit=DATA_FILE_LIMIT, what="a project file")
    except OSError as error:
        raise ProjectError(file_problem(error), file=str(path)) from None
    try:
        content = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ProjectError(f"cannot read the file ({error})", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise ProjectError(
            f"not valid JSON: {error.msg}", file=str(path), line=error.lineno
        ) from None
    except RecursionError:
        raise ProjectError("not valid JSON: nested too deeply", file=str(path)) from None
    where = lone_surrogate_at(content)
    if where is not None:  # a \ud800 escape: no text, and training failed on it at a traceback
        where = "a string" if where == "the request body" else where
        raise ProjectError(
            f"{where} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is "
            "not Unicode text",
            file=str(path),
        )
    return content


def read_luis(content: dict[str, Any], file: str) -> NLUData:
    version = str(content.get("luis_schema_version"))
    major = version.split(".")[0]
    if major.isdigit() and int(major) > NEWEST_LUIS_SCHEMA:
        logger.warning(
            "%s: LUIS schema version %s is newer than %d.x, the newest known; read as that",
            file,
            version,
            NEWEST_LUIS_SCHEMA,
        )
    data = NLUData()
    for index, item in enumerate(list_at(content, "utterances", file)):
        where = f"utterances[{index}]"
        text = text_at(item, "text", where, file, empty=True)
        intent = text_at(item, "intent", where, file)
        entities = []
        for number, entity in enumerate(_entries(item, "entities", where, file)):
            at = f"{where}.entities[{number}]"
            start, last = _whole(entity, "startPos", at, file), _whole(entity, "endPos", at, file)
            name, role = text_at(entity, "entity", at, file), entity.get("role")
            entities.append(_annotation(text, start, last + 1, name, role, at, file))
        data.examples.append(NLUExample(text, intent, _in_order(entities), Origin(file, None)))
    for index, item in enumerate(list_at(content, "regex_features", file)):
        where = f"regex_features[{index}]"
        if isinstance(item, dict) and item.get("activated", False):
            name = text_at(item, "name", where, file)
            pattern = text_at(item, "pattern", where, file)
            data.regexes.append(RegexFeature(name, pattern, Origin(file, None)))
    for index, item in enumerate(list_at(content, "regex_entities", file)):
        where = f"regex_entities[{index}]"
        name = text_at(item, "name", where, file)
        pattern = text_at(item, "regexPattern", where, file)
        data.regexes.append(RegexFeature(name, pattern, Origin(file, None)))
    for index, item in enumerate(list_at(content, "closedLists", file)):
        where = f"closedLists[{index}]"
        name = text_at(item, "name", where, file)
        elements: list[str] = []
        for number, sub in enumerate(_entries(item, "subLists", where, file)):
            at = f"{where}.subLists[{number}]"
            canonical = text_at(sub, "canonicalForm", at, file)
            variants = strings_at(sub, "list", at, file)
            for variant in variants:
                if variant.lower() != canonical.lower():
                    data.synonyms[variant.lower()] = canonical
            elements.extend(v for v in (canonical, *variants) if v not in elements)
        if elements:
            data.lookups.append(LookupTable(name, tuple(elements), Origin(file, None)))
    return data


def read_wit(content: dict[str, Any], file: str) -> NLUData:
    data = NLUData()
    for index, item in enumerate(list_at(content, "utterances", file)):
        where = f"utterances[{index}]"
        if not isinstance(item, dict):
            raise ProjectError(f"{where}: an utterance is an object", file=file)
        if item.get("entities") is None:
            continue  # as Rasa: an utterance without its entities list is not an example
        text = text_at(item, "text", where, file, empty=True)
        intent = item.get("intent")
        if intent is None:
            intent = OUT_OF_SCOPE
        elif not isinstance(intent, str) or not intent.strip():
            raise ProjectError(f"{where}: 'intent' must be a text, not {intent!r}", file=file)
        entities = []
        for number, entity in enumerate(_entries(item, "entities", where, file)):
            at = f"{where}.entities[{number}]"
            name, role = text_at(entity, "entity", at, file), None
            if ":" in name:
                name, role = name.rsplit(":", 1)
            start, end = _whole(entity, "start", at, file), _whole(entity, "end", at, file)
            entities.append(_annotation(text, start, end, name, role, at, file))
        data.examples.append(NLUExample(text, intent, _in_order(entities), Origin(file, None)))
    return data


def read_dialogflow_intent(content: dict[str, Any], path: Path, language: str) -> NLUData:
    intent = text_at(content, "name", "the intent", str(path))
    data = NLUData()
    examples_file, items = _companion(path, "usersays", language)
    for index, item in enumerate(items):
        where = f"[{index}]"
        text = ""
        entities = []
        for number, chunk in enumerate(_entries(item, "data", where, examples_file)):
            at = f"{where}.data[{number}]"
            piece = text_at(chunk, "text", at, examples_file, empty=True)
            if "alias" in chunk or "meta" in chunk:
                name = chunk.get("alias", chunk.get("meta"))
                if not isinstance(name, str) or not name:
                    raise ProjectError(
                        f"{at}: 'alias' / 'meta' must be an entity's name, not {name!r}",
                        file=examples_file,
                    )
                if name != "@sys.ignore" and piece:
                    start = len(text)
                    entities.append(
                        _annotation(
                            text + piece, start, start + len(piece), name, None, at, examples_file
                        )
                    )
            text += piece
        data.examples.append(NLUExample(text, intent, tuple(entities), Origin(examples_file, None)))
    return data


def read_dialogflow_entity(content: dict[str, Any], path: Path, language: str) -> NLUData:
    name = text_at(content, "name", "the entity", str(path))
    data = NLUData()
    entries_file, items = _companion(path, "entries", language)
    values: list[str] = []
    for index, item in enumerate(items):
        where = f"[{index}]"
        value = text_at(item, "value", where, entries_file)
        synonyms = strings_at(item, "synonyms", where, entries_file) if "synonyms" in item else []
        for synonym in synonyms:
            if synonym.lower() != value.lower():
                data.synonyms[synonym.lower()] = value
        values.extend(s for s in synonyms if s not in values)
    origin = Origin(entries_file, None)
    if content.get("isRegexp"):
        data.regexes.extend(RegexFeature(name, pattern, origin) for pattern in values)
    else:
        elements = tuple(v for v in values if "@" not in v)  # "@city": a composite's part
        if elements:
            data.lookups.append(LookupTable(name, elements, origin))
    return data


def _companion(path: Path, kind: str, language: str) -> tuple[str, list[Any]]:
    """A Dialogflow intent's or entity's file of examples / entries for ``language``: (its name,
    its items); none, with a warning, where there is no such file."""
    companion = path.with_name(f"{path.stem}_{kind}_{language}.json")
    if not companion.is_file():
        logger.warning(
            "%s: no %s file for language '%s' beside it (%s); it adds no training data",
            path,
            "examples" if kind == "usersays" else "entries",
            language,
            companion.name,
        )
        return str(companion), []
    content = read_json(companion)
    if not isinstance(content, list):
        raise ProjectError("the file must hold a JSON list", file=str(companion))
    return str(companion), content


def _in_order(entities: list[EntityAnnotation]) -> tuple[EntityAnnotation, ...]:
    """The annotations in the order of the text, as the YAML markup writes them."""
    return tuple(sorted(entities, key=lambda a: (a.start, a.end)))


def _annotation(
    text: str, start: int, end: int, name: str, role: Any, where: str, file: str
) -> EntityAnnotation:
    if not 0 <= start < end <= len(text):
        raise ProjectError(
            f"{where}: the span {start}..{end} is not in the text ({len(text)} characters)",
            file=file,
        )
    if role is not None and not isinstance(role, str):
        raise ProjectError(f"{where}: 'role' must be a text, not {role!r}", file=file)
    return EntityAnnotation(start, end, text[start:end], name, role or None)


def list_at(content: dict[str, Any], key: str, file: str) -> list[Any]:
    value = content.get(key) or []
    if not isinstance(value, list):
        raise ProjectError(f"'{key}' must be a list", file=file, key=key)
    return value


def _entries(item: Any, key: str, where: str, file: str) -> list[dict[str, Any]]:
    if not isinstance(item, dict):
        raise ProjectError(f"{where}: must be an object", file=file)
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ProjectError(f"{where}: '{key}' must be a list of objects", file=file, key=key)
    return value


def text_at(item: Any, key: str, where: str, file: str, *, empty: bool = False) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ProjectError(f"{where}: '{key}' must be a text, not {value!r}", file=file, key=key)
    return value


def _whole(item: dict[str, Any], key: str, where: str, file: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProjectError(
            f"{where}: '{key}' must be a whole number, not {value!r}", file=file, key=key
        )
    return value


def strings_at(item: Any, key: str, where: str, file: str) -> list[str]:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{where}: '{key}' must be a list of texts", file=file, key=key)
    return value


def read_json_nlu(path: Path, language: str = "en") -> NLUData | None:
    """The training data of a JSON file in any of the formats above, or None where the file
    holds none (another JSON file, or one read through the file it belongs to)."""
    from chatbot.project.nlu_json import read_rasa_json

    content = read_json(path)
    found = json_format(path, content)
    if found == RASA:
        return read_rasa_json(path)
    if found == LUIS:
        return read_luis(content, str(path))
    if found == WIT:
        return read_wit(content, str(path))
    if found == DIALOGFLOW_INTENT:
        return read_dialogflow_intent(content, path, language)
    if found == DIALOGFLOW_ENTITY:
        return read_dialogflow_entity(content, path, language)
    return None
