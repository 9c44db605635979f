"""The example bots' files, changed at random, give clear errors and never a traceback.

Each example is one of the shipped bots (``domains/``) with one to three of its YAML files
changed at one place each: a value replaced by another of any type, a key or item deleted, a
key renamed, a value wrapped in a list or a mapping, an item repeated, a value turned into
text. Reading such a project must give ``ProjectError``s that name their file, or a project
whose config checks and training data build without anything but a ``ChatbotError``. A
second test trains what still reads (two epochs) and talks to it: every turn is answered or
refused with a ``ChatbotError``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ChatbotError
from chatbot.project.loader import check_project
from chatbot.project.project import Project
from training.dialogue import training_data
from training.train import check_config, train_project

DOMAINS = Path(__file__).resolve().parents[3] / "domains"
BOTS = ("moodbot", "restaurant", "knowledgebase")

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
    float("nan"),
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


def write_changed_bot(
    data: st.DataObject, folder: Path, bot: str, *, only: str = "", mild: bool = False
) -> None:
    """The bot written into ``folder`` with one to three of its files (those whose path starts
    with ``only``) changed (``_changed``)."""
    files = dict(bot_files(bot))
    names = names_of(bot)
    candidates = sorted(path for path in files if path.startswith(only))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(candidates))
        document = _changed(yaml.safe_load(files[path]), data, names, mild=mild)
        files[path] = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def read_changed(folder: Path) -> Project | None:
    """The project, or None where it has mistakes; each mistake must name its file."""
    project, errors = check_project(folder)
    for error in errors:
        assert error.file is not None, error
        assert str(error).startswith(error.file), error
    return project if not errors else None


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples in every run: CI does not turn on a new find
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@fuzz(300)
@given(data=st.data(), bot=st.sampled_from(BOTS))
def test_changed_files_give_errors_naming_the_file(
    tmp_path: Path, data: st.DataObject, bot: str
) -> None:
    folder = tmp_path / f"{bot}-{next(EXAMPLES)}"
    write_changed_bot(data, folder, bot)
    project = read_changed(folder)
    event("reads" if project is not None else "mistakes found")
    if project is not None:
        try:
            check_config(project)
            training_data(project)
        except ChatbotError:
            pass


async def talk(agent: Agent, project: Project, data: st.DataObject) -> int:
    """A few turns of examples, payloads with odd entity values and odd texts; the number of
    turns answered."""
    texts = [example.text for example in project.nlu.examples] or ["hi"]
    intents = sorted(project.domain.intents) or ["greet"]
    entities = sorted(project.domain.entities) or ["x"]
    payloads = st.builds(
        lambda intent, found: f"/{intent}{json.dumps(found)}" if found else f"/{intent}",
        st.sampled_from(intents),
        st.dictionaries(st.sampled_from(entities), values, max_size=2),
    )
    odd = st.sampled_from(["", "/", "/restart", "/session_start", "/back", "/x{", "é" * 3000])
    answered = 0
    for _ in range(data.draw(st.integers(1, 8))):
        text = data.draw(st.sampled_from(texts) | payloads | odd)
        try:
            await agent.processor.handle_message(UserMessage(text, "tester"))
            answered += 1
        except ChatbotError:
            pass
    return answered


@pytest.fixture
def quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)  # the bots' failing actions log an error a turn
    yield
    logging.disable(logging.NOTSET)


@fuzz(40)
@given(data=st.data())
@pytest.mark.usefixtures("quiet")
def test_changed_bots_that_train_answer_or_refuse_clearly(
    tmp_path: Path, data: st.DataObject
) -> None:
    folder = tmp_path / f"moodbot-{next(EXAMPLES)}"
    write_changed_bot(data, folder, "moodbot", only="d", mild=True)  # domain.yml, data/
    config = folder / "config.yml"
    config.write_text(re.sub(r"epochs: \d+", "epochs: 2", config.read_text()))
    project = read_changed(folder)
    if project is None:
        event("mistakes found")
        return
    try:
        model = train_project(project, seed=1, show_progress=False)
    except ChatbotError:
        event("training refused")
        return
    answered = asyncio.run(talk(Agent(model), project, data))
    event(f"answered {min(answered, 1)}+ turns")
