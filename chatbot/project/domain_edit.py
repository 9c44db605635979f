"""Adding intents to a user's domain file without rewriting it.

``chatbot interactive`` exports the intents a session made up. A YAML library would write the
whole file anew (its own indentation, quotes and line breaks, comments at risk); here the new
``- name`` lines are inserted at the end of the top-level ``intents:`` block list, in that
list's indentation, and no other byte of the file changes. Where the list is not a block list
(written inline, ``intents: [greet]``, or missing) nothing is written and the caller says where
the intents went instead. The result is parsed before it replaces the file: it must read as the
old file with the new intents at the end of its list, or the file stays as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.yaml_io import load_yaml_text, to_plain

_KEY = re.compile(r"intents:\s*(#.*)?\Z")
_PLAIN = re.compile(r"[A-Za-z_][\w\-]*\Z")
# Plain words YAML 1.1 reads as something else than text.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def add_intents(path: Path, names: Sequence[str]) -> bool:
    """Append ``names`` to the top-level ``intents:`` block list of the domain file at ``path``
    (those it has already are skipped); False, the file untouched, where that cannot be done
    safely."""
    try:
        text = path.read_bytes().decode("utf-8")  # line ends as they are (no newline mapping)
    except (OSError, UnicodeDecodeError):
        return False
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _KEY.match(line.rstrip("\r\n"))), None)
    if start is None:
        return False
    end = start + 1  # the block: every line up to the next top-level key
    while end < len(lines) and not _top_level_key(lines[end]):
        end += 1
    items = [line for line in lines[start + 1 : end] if line.lstrip().startswith("- ")]
    if not items:
        return False
    indent = items[0][: len(items[0]) - len(items[0].lstrip())]
    old = _read(text)
    before = _intent_names(old)
    if before is None:
        return False
    added = [n for n in names if n not in before]
    if not added:
        return True
    last = max(i for i in range(start + 1, end) if _content(lines[i]))
    newline = "\r\n" if lines[last].endswith("\r\n") else "\n"
    if not lines[last].endswith(("\n", "\r")):
        lines[last] += newline
    lines[last + 1 : last + 1] = [f"{indent}- {_scalar(name)}{newline}" for name in added]
    new_text = "".join(lines)
    after = _read(new_text)
    unchanged = _without_intents(after) == _without_intents(old)
    if _intent_names(after) != [*before, *added] or not unchanged:
        return False
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(new_text.encode("utf-8"))
    temporary.replace(path)
    return True


def _read(text: str) -> Any:
    """The file's content as the project's reader reads it (YAML 1.2); None if it is not YAML."""
    try:
        return to_plain(load_yaml_text(text))
    except ProjectError:
        return None


def _top_level_key(line: str) -> bool:
    stripped = line.rstrip("\r\n")
    return bool(stripped) and not stripped[0].isspace() and stripped[0] not in "-#"


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _scalar(name: str) -> str:
    if _PLAIN.match(name) and name.lower() not in _RESERVED:
        return name
    return json.dumps(name, ensure_ascii=False)


def _intent_names(data: Any) -> list[str] | None:
    intents = data.get("intents") if isinstance(data, dict) else None
    if not isinstance(intents, list):
        return None
    names = []
    for item in intents:
        if isinstance(item, dict) and len(item) == 1:
            names.append(str(next(iter(item))))
        elif isinstance(item, str):
            names.append(item)
        else:
            return None
    return names


def _without_intents(data: Any) -> Any:
    return {k: v for k, v in data.items() if k != "intents"} if isinstance(data, dict) else data
