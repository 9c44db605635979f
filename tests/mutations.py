"""Changing a bot's YAML files at random, for property tests of what reads them.

``changed_files`` changes one to three files at one place each (``OPERATIONS``): a value
replaced by another of any type, a key or item deleted, a key renamed, a value wrapped in a list
or a mapping, an item repeated, a value turned into text; ``mild`` keeps to changes of the same
type, so more of the projects still read and train.
"""

from __future__ import annotations

import copy
import itertools
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

DOMAINS = Path(__file__).resolve().parents[1] / "domains"

# Values a mistyped file holds; hypothesis adds its own text, numbers and containers.
ODD_VALUES = [
    None,
    "",
    "x" * 300,  # longer than a file name may be
    "ü名字",
    "${UNDEFINED_VARIABLE}",
    "{slot}",
    "- x",
    "*",
    "1e400",
    10**30,
    2**63,
    float("nan"),
    float("inf"),
    {"intent": None},
    [[1]],
]
leaves = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 9), children, max_size=2)
    ),
    max_leaves=5,
)
EXAMPLES = itertools.count()  # a new folder for each example: tmp_path is the test's
OPERATIONS = ("replace", "delete", "rename", "wrap", "repeat", "text")


@cache
def bot_files(bot: str) -> dict[str, str]:
    """The bot's YAML files (not its custom actions), by path relative to its folder."""
    root = DOMAINS / bot
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.yml"))
        if "actions" not in path.relative_to(root).parts
    }


def names_of(bot: str) -> list[str]:
    """The domain's names: a changed value is often another name of the same bot."""
    domain = yaml.safe_load(bot_files(bot)["domain.yml"])
    found: list[str] = []
    for key in ("intents", "entities", "actions"):
        found += [x if isinstance(x, str) else next(iter(x)) for x in domain.get(key) or []]
    for key in ("slots", "responses", "forms"):
        found += list(domain.get(key) or {})
    return found


def _place(document: Any, data: st.DataObject) -> tuple[Any, ...]:
    """A place in ``document``, by a walk down from the top: a random child at each level,
    stopping there at random; so each section of a file is as likely as another whatever its
    length (the walk would otherwise mostly land among a long list's items)."""
    path: tuple[Any, ...] = ()
    node = document
    while isinstance(node, (dict, list)) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = keys[data.draw(st.integers(0, len(keys) - 1))]
        path, node = (*path, key), node[key]
        if data.draw(st.booleans()):
            break
    return path


def _like(old: Any, names: list[str]) -> st.SearchStrategy[Any]:
    """Values of ``old``'s type: a name or odd text for text, another number for a number."""
    if isinstance(old, bool):
        return st.just(not old)
    if isinstance(old, (int, float)):
        return st.sampled_from([0, -1, 1, 0.5, 2, 10**9])
    if isinstance(old, str):
        return st.sampled_from(names) | st.sampled_from(["", "{name}", "{", "x" * 300, "名字"])
    return st.just(old)


def _changed(document: Any, data: st.DataObject, names: list[str], *, mild: bool) -> Any:
    """``document`` with one place changed as ``OPERATIONS`` says; ``mild``: a value replaced
    by one of its type, or a list's item deleted or repeated (more such projects read)."""
    path = _place(document, data)
    if not path:
        return data.draw(values)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key, old = path[-1], parent[path[-1]]
    operation = data.draw(st.sampled_from(("replace", "delete", "repeat") if mild else OPERATIONS))
    event(operation)
    if mild and operation == "delete" and not isinstance(parent, list):
        operation = "replace"
    new_value = data.draw(_like(old, names) if mild else st.sampled_from(names) | values)
    if operation == "replace":
        parent[key] = new_value
    elif operation == "delete":
        del parent[key]
    elif operation == "rename" and isinstance(parent, dict):
        new_key = new_value if isinstance(new_value, (str, int, float, bool)) else str(new_value)
        parent[new_key] = parent.pop(key)
    elif operation == "wrap":
        parent[key] = [old] if not isinstance(old, list) else {"x": old}
    elif operation == "repeat" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(old))
    else:
        parent[key] = str(old) if not isinstance(old, str) else old.upper()
    return document


def changed_files(
    data: st.DataObject,
    files: dict[str, str],
    names: list[str],
    *,
    only: str = "",
    mild: bool = False,
) -> dict[str, str]:
    """``files`` (text by path) with one to three of those whose path starts with ``only``
    changed at one place each (``_changed``)."""
    files = dict(files)
    candidates = sorted(path for path in files if path.startswith(only))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(candidates))
        document = _changed(yaml.safe_load(files[path]), data, names, mild=mild)
        files[path] = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    return files


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """``files`` (text by path) written under ``folder``, a new folder; ``folder``."""
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return folder


def fuzz(examples: int) -> settings:
    """Hypothesis's settings for these tests: ``examples`` of them, the same in every run."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples in every run: CI does not turn on a new find
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
