"""What the domain declares and no story or rule uses: warnings of ``chatbot data validate``, as
Rasa's validator gives them ("The intent 'x' is not used in any story or rule.", the same of a
response), a little less noisy: an intent a slot mapping reads, a response a form asks with, a
default action says or the project's custom actions name in their code counts as used."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from chatbot.errors import ProjectError
from chatbot.file_input import read_bytes
from chatbot.paths import is_dir, is_file
from chatbot.project.domain import DEFAULT_INTENTS
from chatbot.project.project import Project
from chatbot.project.stories import ActionStep, OrStep, Step, UserStep

# Responses Rasa's default actions say (action_default_fallback, two-stage fallback,
# action_restart, ...) and the one our server says when a custom action fails.
_SAID_BY_DEFAULT = frozenset(
    {"utter_default", "utter_ask_rephrase", "utter_restart", "utter_action_failed", "utter_back"}
)
_RESPONSE_NAME = re.compile(r"utter_[A-Za-z0-9_/\-]+")


def unused_in_dialogue(project: Project) -> list[ProjectError]:
    """One warning per intent and per response of the domain that no story or rule uses."""
    domain = project.domain
    intents: set[str] = set()
    actions: set[str] = set()
    for story in (*project.stories, *project.rules):
        for step in _steps(story.steps):
            if isinstance(step, UserStep) and step.intent:
                intents.add(step.intent.split("/", 1)[0])
            elif isinstance(step, ActionStep) and step.name:
                actions.add(step.name)
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            intents.update(name.split("/", 1)[0] for name in mapping.intent)
    asked = {
        name for form in domain.forms.values() for slot in form.required_slots
        for name in (f"utter_ask_{form.name}_{slot}", f"utter_ask_{slot}")
    }  # fmt: skip
    named_in_code = _names_in_actions_code(project)
    warnings = []
    for intent in domain.intents.values():
        if intent.name not in intents and intent.name not in DEFAULT_INTENTS:
            warnings.append(
                ProjectError(
                    f"intent '{intent.name}' is not used in any story or rule",
                    file=intent.origin.file,
                    line=intent.origin.line,
                )
            )
    reported: set[str] = set()
    for name, variations in domain.responses.items():
        base = name.split("/", 1)[0]  # a retrieval intent's response: its action, utter_faq
        if base in reported or {name, base} & (actions | asked | _SAID_BY_DEFAULT | named_in_code):
            continue
        reported.add(base)
        origin = variations[0].origin if variations else None
        warnings.append(
            ProjectError(
                f"response '{base}' is not used in any story or rule",
                file=origin.file if origin else None,
                line=origin.line if origin else None,
                hint="A custom action that builds its name at run time may still say it",
            )
        )
    return warnings


def _steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    for step in steps:
        if isinstance(step, OrStep):
            yield from _steps(step.alternatives)
        else:
            yield step


def _names_in_actions_code(project: Project) -> set[str]:
    """The response names the project's custom actions write in their code (``utter_...``)."""
    block = project.endpoints.action_endpoint
    module = str((block.params.get("actions_module") if block else None) or "actions")
    base = project.root / Path(*module.split("."))
    files = list(base.rglob("*.py")) if is_dir(base) else []
    if is_file(base.with_suffix(".py")):
        files.append(base.with_suffix(".py"))
    found: set[str] = set()
    for file in files:
        try:
            text = read_bytes(file, what="an actions module").decode("utf-8", errors="replace")
        except OSError:  # not a regular file (a named pipe waited forever), unreadable, too big
            continue
        found.update(_RESPONSE_NAME.findall(text))
    return found
