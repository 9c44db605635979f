"""The channels as ``chatbot run`` mounts them: from credentials.yml blocks, through the server."""

from __future__ import annotations

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


async def test_without_the_socketio_channel_the_page_says_the_chat_is_off(agent: Agent) -> None:
    html = {"Accept": "text/html"}
    async with (
        serve(create_app(agent)) as served,
        aiohttp.ClientSession() as http,
        http.get(f"{served.url}/", headers=html) as response,
    ):
        assert 'data-enabled="false"' in await response.text()
