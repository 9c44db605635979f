"""How ``action_endpoint: actions_module:`` imports a project's actions: as rasa-sdk's action
server does (Rasa's financial-demo and helpdesk-assistant import their own modules by the
package's name, and keep helpers beside it), and without one project's actions answering for
another's in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.actions.base import ActionContext
from chatbot.actions.in_process import InProcessExecutor
from chatbot.conversation.conversation import Conversation
from chatbot.errors import ConfigError
from tests.helpers import domain_of

ACTION = """\
from rasa_sdk import Action
{imports}


class Hello(Action):
    def name(self):
        return "action_hello"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text={text})
        return []
"""


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


async def said(executor: InProcessExecutor) -> str:
    domain = domain_of("intents: [greet]\nactions: [action_hello]\n")
    answer = await executor.run("action_hello", ActionContext(Conversation("u", domain), domain))
    return str(answer["responses"][0]["text"])


async def test_modules_of_the_package_import_each_other_by_its_name(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "bot",
        {
            "actions/__init__.py": "",
            "actions/texts.py": "from bot_settings import NAME\nGREETING = f'Hi from {NAME}'\n",
            "actions/actions.py": ACTION.format(
                imports="from actions.texts import GREETING", text="GREETING"
            ),
            "bot_settings.py": "NAME = 'the bank'\n",  # beside the package, in the project
        },
    )
    assert await said(InProcessExecutor(root, "actions")) == "Hi from the bank"


async def test_a_package_folder_without_init_is_read_as_rasa_sdk_reads_it(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "bot",
        {"actions/actions.py": ACTION.format(imports="", text="'namespace package'")},
    )
    assert await said(InProcessExecutor(root, "actions")) == "namespace package"


async def test_two_projects_packages_of_one_name_each_answer_for_their_own(
    tmp_path: Path,
) -> None:
    executors = []
    for bot in ("first", "second"):
        root = write_project(
            tmp_path / bot,
            {
                "actions/__init__.py": "",
                "actions/texts.py": f"GREETING = 'the {bot} bot'\n",
                "actions/actions.py": ACTION.format(
                    imports="from actions.texts import GREETING", text="GREETING"
                ),
            },
        )
        executors.append(InProcessExecutor(root, "actions"))
    assert [await said(e) for e in executors] == ["the first bot", "the second bot"]
    again = InProcessExecutor(tmp_path / "first", "actions")  # imported again: still its own
    assert await said(again) == "the first bot"


@pytest.mark.parametrize(
    ("files", "needles"),
    [
        (
            {"actions/__init__.py": "", "actions/broken.py": "import no_such_module_here\n"},
            ["importing actions.broken failed", "no_such_module_here"],
        ),
        ({"actions/__init__.py": "raise ValueError('bad init')\n"}, ["bad init"]),
        ({"actions/README.md": "no code\n"}, ["neither", "__init__.py"]),
    ],
)
def test_an_actions_package_that_cannot_be_imported_is_a_clear_error(
    tmp_path: Path, files: dict[str, str], needles: list[str]
) -> None:
    root = write_project(tmp_path / "bot", files)
    with pytest.raises(ConfigError) as error:
        InProcessExecutor(root, "actions")
    for needle in needles:
        assert needle in str(error.value)
