"""The channels as ``chatbot run`` mounts them: from credentials.yml blocks, through the server."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from chatbot.agent import Agent
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.server.app import create_app
from chatbot.server.settings import ServerSettings
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
    blocks are named as skipped, and the channels that are served still answer."""
    blocks = {
        "audiocodes": EndpointBlock("audiocodes", {"token": "x"}),
        "rasa": EndpointBlock("rasa", {"url": "http://localhost:5002/api"}),
        "addons.custom_channel.MyIO": EndpointBlock("addons.custom_channel.MyIO", {}),
        "rest": EndpointBlock("rest", {}),
    }
    with caplog.at_level(logging.WARNING, logger="chatbot.server.app"):
        app = create_app(agent, ServerSettings(credentials=Credentials(blocks)))
    warned = caplog.text
    assert "'audiocodes' channel is not served" in warned and "'rasa' channel" in warned
    assert "custom Rasa connector" in warned and "addons.custom_channel.MyIO" in warned
    assert "no channel" not in warned
    async with serve(app) as served, aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/webhooks/rest/") as response:
            assert response.status == 200
        async with http.get(f"{served.url}/webhooks/audiocodes/") as response:
            assert response.status == 404


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
