"""Custom channels: credentials.yml names a ``module.Class`` of the project's own code, a subclass of
``connectors.base.InputChannel``, which ``chatbot run`` imports from the project's folder and mounts
as it mounts its own channels. Rasa's own connectors (Sanic classes): test_rasa_connector.py."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.project.endpoints_reader import read_credentials
from chatbot.server.app import create_app
from chatbot.server.settings import ServerSettings
from connectors.registry import channel_entries
from tests.connectors.servers import serve

# A channel as a user writes one: it takes {"user", "says"} and answers with the bot's texts,
# through the server's gate (limits, metrics, the turn) as the built-in channels do.
ECHO_CHANNEL = """
from aiohttp import web

from chatbot.conversation.messages import UserMessage
from chatbot.server.keys import GATE
from connectors.base import InputChannel


class ShopInput(InputChannel):
    name = "shop"

    def __init__(self, greeting: str = "") -> None:
        self.greeting = greeting

    @classmethod
    def from_credentials(cls, params):
        return cls(params.get("greeting", ""))

    def register(self, app, agent_getter):
        async def receive(request):
            body = await request.json()
            message = UserMessage(body["says"], body["user"], input_channel=self.name)
            answer = await request.app[GATE].handle(message)
            texts = [m["text"] for m in answer if "text" in m]
            return web.json_response({"greeting": self.greeting, "texts": texts})

        app.router.add_post(f"/webhooks/{self.name}/webhook", receive)
"""


def project(tmp_path: Path, files: dict[str, str], credentials: str) -> Path:
    """A project folder with ``files`` (path -> source) and its credentials.yml; the package
    gets a name of its own, so that tests do not share an imported module."""
    package = f"addons_{secrets.token_hex(4)}"
    (tmp_path / package).mkdir()
    for name, source in files.items():
        target = tmp_path / package / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
    (tmp_path / package / "__init__.py").write_text("")
    path = tmp_path / "credentials.yml"
    path.write_text(credentials.replace("PKG", package))
    return path


async def test_a_custom_channel_is_mounted_from_the_projects_folder(
    agent: Agent, tmp_path: Path
) -> None:
    path = project(
        tmp_path,
        {"channels.py": ECHO_CHANNEL},
        "rest:\nPKG.channels.ShopInput:\n  greeting: welcome\n",
    )
    credentials = read_credentials(path)
    app = create_app(agent, ServerSettings(credentials=credentials))
    assert "shop: POST /webhooks/shop/webhook" in channel_entries(credentials.channels.values())
    async with serve(app) as served, aiohttp.ClientSession() as http:
        body = {"user": "ann", "says": "/greet"}
        async with http.post(f"{served.url}/webhooks/shop/webhook", json=body) as response:
            assert response.status == 200
            answer = await response.json()
        async with http.get(f"{served.url}/metrics") as metrics:
            counted = await metrics.text()
    assert answer["greeting"] == "welcome"
    assert answer["texts"] and all(isinstance(t, str) and t for t in answer["texts"])
    conversation = await agent.store.load("ann")
    assert [e["text"] for e in conversation.events if e["event"] == "user"] == ["/greet"]
    assert 'chatbot_messages_total{channel="shop",outcome="ok"} 1.0' in counted


@pytest.mark.parametrize(
    ("files", "entry", "said"),
    [
        ({}, "PKG.missing.Input", "no module"),
        ({"broken.py": "def oops(:\n"}, "PKG.broken.Input", "importing"),
        ({"fine.py": "x = 1\n"}, "PKG.fine.Input", "has no 'Input'"),
        ({"fine.py": "x = 1\n"}, "PKG.fine.x", "is no class but int"),
        (
            {
                "nameless.py": "from connectors.base import InputChannel\n"
                "class Input(InputChannel):\n    def register(self, app, agent_getter): pass\n"
            },
            "PKG.nameless.Input",
            "must define 'name'",
        ),
        ({}, "PKG.not-a-module.Input", "neither a channel nor a module.Class path"),
    ],
    ids=["missing-module", "syntax-error", "no-such-class", "no-class", "no-name", "not-a-path"],
)
def test_a_custom_channel_that_cannot_load_is_an_error_naming_the_file_and_line(
    agent: Agent, tmp_path: Path, files: dict[str, str], entry: str, said: str
) -> None:
    path = project(tmp_path, files, f"rest:\n{entry}:\n")
    with pytest.raises(ConfigError) as error:
        create_app(agent, ServerSettings(credentials=read_credentials(path)))
    message = str(error.value)
    assert message.startswith(f"{path}:2: "), message
    assert said in message, message
    assert "Traceback" not in message


def test_a_custom_channel_that_takes_a_built_in_channels_name_is_an_error(
    agent: Agent, tmp_path: Path
) -> None:
    source = ECHO_CHANNEL.replace('name = "shop"', 'name = "rest"')
    path = project(tmp_path, {"channels.py": source}, "rest:\nPKG.channels.ShopInput:\n")
    with pytest.raises(ConfigError) as error:
        create_app(agent, ServerSettings(credentials=read_credentials(path)))
    message = str(error.value)
    assert message.startswith(f"{path}:2: ") and "'rest' is rest's already" in message, message
