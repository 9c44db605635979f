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
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from chatbot.agent import Agent
from chatbot.conversation.messages import UserMessage
from chatbot.errors import ChatbotError
from chatbot.project.loader import check_project
from chatbot.project.project import Project
from tests.mutations import EXAMPLES, bot_files, changed_files, fuzz, names_of, values, write_files
from training.dialogue import training_data
from training.train import check_config, train_project

BOTS = ("moodbot", "restaurant", "knowledgebase")


def read_changed(folder: Path) -> Project | None:
    """The project, or None where it has mistakes; each mistake must name its file."""
    project, errors = check_project(folder)
    for error in errors:
        assert error.file is not None, error
        assert str(error).startswith(error.file), error
    return project if not errors else None


@fuzz(300)
@given(data=st.data(), bot=st.sampled_from(BOTS))
def test_changed_files_give_errors_naming_the_file(
    tmp_path: Path, data: st.DataObject, bot: str
) -> None:
    files = changed_files(data, bot_files(bot), names_of(bot))
    folder = write_files(tmp_path / f"{bot}-{next(EXAMPLES)}", files)
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
    bot = "moodbot"
    files = changed_files(data, bot_files(bot), names_of(bot), only="d", mild=True)  # domain, data
    folder = write_files(tmp_path / f"{bot}-{next(EXAMPLES)}", files)
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
    event("some turns answered" if answered else "every turn refused")
