"""The channels as ``chatbot run`` mounts them: from credentials.yml blocks, through the server."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from chatbot.agent import Agent
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.project.endpoints_reader import read_credentials
from chatbot.server.app import create_app
from chatbot.server.keys import OUTPUTS, SETTINGS
from chatbot.server.settings import ServerSettings, WorkerSlot
from connectors.registry import channel_entries, served_blocks
from connectors.socketio import SocketIOChannel
from connectors.telegram import TelegramChannel
from connectors.webchat import CHAT_PAGE_CONFIG
from tests.connectors.fake_slack import SIGNING_SECRET
from tests.connectors.fake_telegram import SECRET, TOKEN
from tests.connectors.servers import serve


async def test_every_channel_mounts_from_its_credentials_block(agent: Agent) -> None:
    blocks: dict[str, dict[str, Any]] = {
        "rest": {},
        "socketio": {"session_persistence": True, "cors_allowed_origins": ["https://x.example"]},
        "slack": {"slack_token": "xoxb-1", "slack_signing_secret": SIGNING_SECRET},
        "telegram": {"access_token": TOKEN, "secret_token": SECRET, "verify": "restaurant_bot"},
        "facebook": {"verify": "v", "secret": "s", "page-access-token": "t"},
        "twilio": {"account_sid": "AC1", "auth_token": "t", "twilio_number": "+15550001111"},
        "botframework": {"app_id": "a", "app_password": "p"},
        "hangouts": {"project_id": "123"},
        "twilio_voice": {"auth_token": "t"},
        "webexteams": {"access_token": "t"},
        "mattermost": {
            "url": "https://chat.example.com/api/v4",
            "token": "t",
            "webhook_token": "w",
        },
    }
    credentials = Credentials(
        {name: EndpointBlock(name, params) for name, params in blocks.items()}
    )
    app = create_app(agent, ServerSettings(credentials=credentials))
    async with serve(app) as served, aiohttp.ClientSession() as http:
        for name in blocks:
            async with http.get(f"{served.url}/webhooks/{name}/") as response:
                assert response.status == 200, name
        async with http.get(f"{served.url}/", headers={"Accept": "text/html"}) as response:
            assert 'data-enabled="true"' in await response.text()


async def test_rasa_channels_we_do_not_serve_are_skipped_with_a_warning(
    agent: Agent, caplog: Any
) -> None:
    """reminderbot keeps a ``rasa:`` block, others ``audiocodes:``: Rasa 3 projects start, the
    blocks are named as skipped, and the channels that are served still answer. (Rasa's custom
    connectors: test_custom_channel.py.)"""
    blocks = {
        "audiocodes": EndpointBlock("audiocodes", {"token": "x"}),
        "rasa": EndpointBlock("rasa", {"url": "http://localhost:5002/api"}),
        "rest": EndpointBlock("rest", {}),
    }
    with caplog.at_level(logging.WARNING, logger="chatbot.server.app"):
        app = create_app(agent, ServerSettings(credentials=Credentials(blocks)))
    warned = caplog.text
    assert "'audiocodes' channel is not served" in warned and "'rasa' channel" in warned
    assert "no channel" not in warned
    async with serve(app) as served, aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/webhooks/rest/") as response:
            assert response.status == 200
        async with http.get(f"{served.url}/webhooks/audiocodes/") as response:
            assert response.status == 404


def test_keys_the_rest_and_callback_channels_do_not_read_are_named_with_file_and_line(
    agent: Agent, caplog: Any, tmp_path: Path
) -> None:
    """Rasa ignores them, and so do we, but not silently: a misspelt ``timeout`` is seen."""
    path = tmp_path / "credentials.yml"
    path.write_text(
        "rest:\n  foo: 1\ncallback:\n  url: http://127.0.0.1:9/bot\n  timeot: 10\n  timeout: 5\n"
    )
    with caplog.at_level(logging.WARNING):
        create_app(agent, ServerSettings(credentials=read_credentials(path)))
    warned = [record.getMessage() for record in caplog.records]
    assert warned == [
        f"{path}:1: rest: ignoring unknown keys foo",
        f"{path}:3: callback: ignoring unknown keys timeot",
    ]
    caplog.clear()
    path.write_text("rest:\ncallback:\n  url: http://127.0.0.1:9/bot\n  timeout: 5\n")
    with caplog.at_level(logging.WARNING):
        create_app(agent, ServerSettings(credentials=read_credentials(path)))
    assert not caplog.records


def test_the_workers_ready_line_names_the_channels_of_the_credentials(
    tmp_path: Path, caplog: Any
) -> None:
    """``chatbot run --workers``' supervisor mounts nothing; its ready line names what the
    workers serve (it said REST under a socket.io-only credentials.yml), quietly."""
    assert channel_entries(served_blocks(None).values()) == ["REST: POST /webhooks/rest/webhook"]
    path = tmp_path / "credentials.yml"
    path.write_text("socketio:\n  socketio_path: /chat.io\nrasa:\n  url: x\n")
    with caplog.at_level(logging.WARNING):
        entries = channel_entries(served_blocks(read_credentials(path)).values())
    assert entries == ["socket.io: /chat.io"] and not caplog.records


def test_only_unserved_channels_warn_that_none_is_mounted(agent: Agent, caplog: Any) -> None:
    blocks = {"audiocodes": EndpointBlock("audiocodes", {"token": "u"})}
    with caplog.at_level(logging.WARNING, logger="chatbot.server.app"):
        create_app(agent, ServerSettings(credentials=Credentials(blocks)))
    assert "no channel of the credentials is mounted" in caplog.text


async def test_without_the_socketio_channel_the_page_says_the_chat_is_off(agent: Agent) -> None:
    html = {"Accept": "text/html"}
    async with (
        serve(create_app(agent)) as served,
        aiohttp.ClientSession() as http,
        http.get(f"{served.url}/", headers=html) as response,
    ):
        assert 'data-enabled="false"' in await response.text()


def _worker_app(slot: WorkerSlot | None, project: Path) -> web.Application:
    app = web.Application()
    app[SETTINGS] = ServerSettings(worker=slot, project_dir=project)
    app[OUTPUTS] = {}
    return app


def test_the_workers_of_one_server_agree_on_the_channels_own_secrets(tmp_path: Path) -> None:
    """``chatbot run --workers``: where credentials.yml gives no secret, every worker derives the
    same from the supervisor's (Telegram's webhook secret), or share the project's kept secret
    (the chat's session keys); separate runs, and servers without workers, keep secrets of
    their own (the chat's: each project its own)."""
    secret = secrets.token_bytes(32)
    runs = [
        [WorkerSlot(1, 2, tmp_path, secret), WorkerSlot(2, 2, tmp_path, secret)],
        [WorkerSlot(1, 2, tmp_path, secrets.token_bytes(32))],
        [None, None],
    ]
    telegram = {"access_token": TOKEN, "webhook_url": "https://bot.example/webhooks/telegram/"}
    tokens, keys = [], []
    for number, run in enumerate(runs):
        for slot in run:
            project = tmp_path / f"project{number if slot is not None else id(slot) + len(keys)}"
            channel = TelegramChannel.from_credentials(telegram)
            channel.register(_worker_app(slot, project), lambda: None)
            tokens.append(channel.secret_token)
            chat = SocketIOChannel()
            app = _worker_app(slot, project)
            chat.register(app, lambda: None)
            keys.append(chat.keys)
            assert (app[CHAT_PAGE_CONFIG].get("transports") == "websocket") == (slot is not None)
    assert tokens[0] == tokens[1] and len(set(tokens)) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,256}", token) for token in tokens)
    conversation, key = keys[0].issue()
    assert keys[1].conversation_of(key) == conversation
    assert keys[2].conversation_of(key) is None and keys[3].conversation_of(key) is None
    # A secret in credentials.yml is the one used, workers or not.
    configured = TelegramChannel.from_credentials({**telegram, "secret_token": SECRET})
    configured.register(_worker_app(runs[0][0], tmp_path), lambda: None)
    assert configured.secret_token == SECRET
