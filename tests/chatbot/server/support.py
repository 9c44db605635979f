"""Fixtures and helpers for server tests (imported by conftest.py here and by connector tests): the
application from the one factory, through aiohttp's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.server import ServerSettings, create_app
from tests.helpers import DOMAINS, dialogue_model

StartServer = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="session")
def restaurant_model() -> TrainedModel:
    """The restaurant bot without NLU (messages as ``/intent`` payloads), trained once."""
    return dialogue_model("restaurant")


@pytest.fixture(scope="session")
def moodbot_model() -> TrainedModel:
    return dialogue_model("moodbot")


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(agent, **settings)``: a running app and a client for it."""
    clients: list[TestClient] = []

    async def start(agent: Agent, settings: ServerSettings | None = None, **kw: Any) -> TestClient:
        app = create_app(agent, settings or ServerSettings(**kw))
        client = TestClient(TestServer(app))
        try:
            await client.start_server()
        except BaseException:
            await client.close()
            raise
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def api(start_server: StartServer, restaurant_model: TrainedModel) -> TestClient:
    """The restaurant bot with the HTTP API on, without authentication, in memory, its custom
    actions in-process (its form's validation action among them)."""
    actions = InProcessExecutor(DOMAINS / "restaurant", "actions")
    agent = Agent(restaurant_model, action_executor=actions)
    return await start_server(agent, enable_api=True, rate_limit=None)


API_TOKEN = "train-token"


@pytest.fixture
async def train_api(
    start_server: StartServer, moodbot_model: TrainedModel, tmp_path: Path
) -> TestClient:
    """moodbot (no NLU) with the HTTP API behind the token ``API_TOKEN``, its project folder
    (where ``/model/train`` keeps models) ``tmp_path``: for the routes that train."""
    return await start_server(
        Agent(moodbot_model),
        enable_api=True,
        auth_token=API_TOKEN,
        rate_limit=None,
        project_dir=tmp_path,
    )


async def say(client: TestClient, sender: str, text: str) -> list[dict[str, Any]]:
    response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status == 200, await response.text()
    messages: list[dict[str, Any]] = await response.json()
    return messages


def without_timestamps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]
