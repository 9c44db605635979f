"""A model served where its custom actions have nothing to run them (another project's actions
module, no action endpoint at all) is served, as Rasa serves it, but with a warning naming them
at startup and at every PUT /model: otherwise every turn that reaches one fails later with "not
found in the actions module" and nothing said why. The startup line names the model file where
the project folder only lends its endpoints to another's model."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from chatbot.actions.base import Action, ActionContext
from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.events import Event
from chatbot.server import ServerSettings
from chatbot.server.app import bot_name
from tests.chatbot.server.support import StartServer
from tests.helpers import domain_of

# The utter_ response, the form and the listed validation actions: only the last three are
# custom actions (``validate_<form>`` and a default action are the project's own once listed).
DOMAIN = """\
intents: [greet]
responses:
  utter_greet: [{text: hi}]
forms:
  booking_form:
    required_slots: []
actions: [utter_greet, action_hello, validate_booking_form, action_validate_slot_mappings]
"""

ACTION = """
class Action{index}(Action):
    def name(self):
        return "{name}"

    def run(self, dispatcher, tracker, domain):
        return []
"""


def actions_module(root: Path, names: list[str]) -> InProcessExecutor:
    """An in-process executor of a project whose actions module registers ``names``."""
    root.mkdir(parents=True, exist_ok=True)
    code = "from rasa_sdk import Action\n" + "".join(
        ACTION.format(index=i, name=name) for i, name in enumerate(names)
    )
    (root / "actions.py").write_text(code)
    return InProcessExecutor(root, "actions")


def model_of(domain: str) -> TrainedModel:
    return TrainedModel(domain_of(domain), [])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("registered", "missing"),
    [
        (["action_hello", "validate_booking_form", "action_validate_slot_mappings"], []),
        (["action_hello"], ["validate_booking_form", "action_validate_slot_mappings"]),
        ([], ["action_hello", "validate_booking_form", "action_validate_slot_mappings"]),
    ],
)
def test_custom_actions_the_actions_module_lacks_are_named_at_startup(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    registered: list[str],
    missing: list[str],
) -> None:
    executor = actions_module(tmp_path / "bot", registered)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Agent(model_of(DOMAIN), action_executor=executor)
    said = warnings(caplog)
    if not missing:
        assert said == []
        return
    assert len(said) == 1
    # Exactly these, in the domain's order: not the response, the form or what is registered.
    assert f"does not register: {', '.join(missing)};" in said[0]
    assert "actions module 'actions'" in said[0] and str(tmp_path / "bot") in said[0]


def test_a_long_list_of_missing_actions_is_cut_after_ten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"action_{n}" for n in range(13)]
    executor = actions_module(tmp_path / "bot", [])
    with caplog.at_level(logging.WARNING):
        Agent(model_of(f"actions: [{', '.join(names)}]\n"), action_executor=executor)
    [said] = warnings(caplog)
    assert f"{', '.join(names[:10])} and 3 more;" in said
    assert "action_10" not in said


class Answer(Action):
    """An in-process action given to the agent (as a knowledge base's are)."""

    name = "action_hello"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


def test_without_an_action_endpoint_one_warning_says_how_to_configure_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        Agent(model_of(DOMAIN), actions={"action_hello": Answer()})
        # No custom action (responses, a form, a default action not listed): nothing to say.
        Agent(model_of("responses: {utter_greet: [{text: hi}]}\nactions: [utter_greet]\n"))
    [said] = warnings(caplog)
    assert "(validate_booking_form, action_validate_slot_mappings)" in said
    assert "no action endpoint is configured" in said
    assert "action_endpoint: {url: " in said and "action_endpoint: {actions_module: " in said
    assert "action_hello" not in said  # the agent's own in-process action runs it


def test_an_action_server_is_not_asked_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/webhook"
        with caplog.at_level(logging.WARNING):
            Agent(model_of(DOMAIN), action_executor=HTTPActionExecutor(url))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody called: it may start after this server
    assert warnings(caplog) == []


async def test_put_model_warns_of_the_new_models_missing_actions_and_serves_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, start_server: StartServer
) -> None:
    executor = actions_module(tmp_path / "bot", ["action_hello"])
    first = "actions: [action_hello]\n"
    with caplog.at_level(logging.WARNING):
        agent = Agent(model_of(first), action_executor=executor)
        api = await start_server(agent, ServerSettings(enable_api=True, rate_limit=None))
        assert warnings(caplog) == []
        path = tmp_path / "other.model"
        model_of("actions: [action_hello, action_gone]\n").to_file(path)
        response = await api.put("/model", json={"model_file": str(path)})
    assert response.status == 204  # a warning, not a refusal: Rasa serves it too
    assert agent.domain.actions == ("action_hello", "action_gone")
    [said] = warnings(caplog)
    assert "does not register: action_gone;" in said


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (None, "bot"),  # the newest in the project's models/
        ("bot/models/a.model", "bot"),
        ("other/models/a.model", "other/models/a.model"),
    ],
)
def test_the_startup_line_names_the_model_file_of_another_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str | None, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServerSettings(
        project_dir=Path("bot"), model_path=Path(model) if model is not None else None
    )
    assert bot_name(settings) == name
