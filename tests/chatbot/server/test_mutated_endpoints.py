"""endpoints.yml and credentials.yml changed at random: ``chatbot run``'s start (settings, the
agent with its stores, action executor, NLG and broker, the application with its channels)
succeeds or stops with a ``ChatbotError``, the one line the CLI prints; never a traceback.

The restaurant bot's files get typical Rasa blocks first (drawn from ``BLOCKS``: stores, a lock
store, brokers, a model server, channels), then one to three changes (``tests.mutations``).
Nothing connects anywhere: building these objects opens no connection.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from chatbot.errors import ChatbotError, ProjectErrors
from chatbot.server.app import build_agent, create_app, resolve_settings
from chatbot.server.settings import ServerSettings
from tests.helpers import dialogue_model
from tests.mutations import EXAMPLES, changed_files, fuzz, write_files

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing is sent there anyway
ENDPOINT_BLOCKS = {
    "action_endpoint": {"url": f"{CLOSED}/webhook", "timeout": 5},
    "tracker_store": {"type": "sql", "dialect": "sqlite", "db": "conversations.db"},
    "lock_store": {"type": "redis", "url": "127.0.0.1", "port": 9, "key_prefix": "bot"},
    "event_broker": {"type": "sql", "db": "events.db"},
    "nlg": {"url": f"{CLOSED}/nlg"},
    "models": {"url": f"{CLOSED}/model", "wait_time_between_pulls": 10},
}
CHANNEL_BLOCKS = {
    "rest": None,
    "callback": {"url": f"{CLOSED}/callback"},
    "socketio": {"user_message_evt": "u", "bot_message_evt": "b", "session_persistence": True},
    "slack": {"slack_token": "xoxb-1", "slack_channel": "C1", "slack_signing_secret": "s"},
    "telegram": {"access_token": "1:a", "verify": "bot", "webhook_url": "https://x.test/hook"},
    "facebook": {"verify": "v", "secret": "s", "page-access-token": "p"},
    "twilio": {"account_sid": "a", "auth_token": "t", "twilio_number": "+15550000"},
    "botframework": {"app_id": "a", "app_password": "p"},
    "mattermost": {"url": CLOSED, "token": "t", "webhook_url": "https://x.test/m"},
    "rocketchat": {"user": "u", "password": "p", "server_url": CLOSED},
    "webexteams": {"access_token": "a", "room": "r"},
    "hangouts": {"project_id": "p"},
}
NAMES = [
    *ENDPOINT_BLOCKS,
    *CHANNEL_BLOCKS,
    "actions_module",
    "sql",
    "redis",
    "in_memory",
    "postgresql",
]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "restaurant.model"
    dialogue_model("restaurant").to_file(path)
    return path


def blocks(table: dict[str, object]) -> st.SearchStrategy[str]:
    """Some of ``table``'s blocks, as a YAML file."""
    chosen = st.lists(st.sampled_from(sorted(table)), unique=True, min_size=1)
    return chosen.map(
        lambda names: yaml.safe_dump({name: table[name] for name in names}, sort_keys=False)
    )


async def start(folder: Path, model: Path) -> None:
    settings = resolve_settings(
        ServerSettings(project_dir=folder, model_path=model, sqlite_path=folder / "c.db")
    )
    agent = build_agent(settings)
    try:
        create_app(agent, settings)
    finally:
        await agent.store.close()
        await agent.locks.close()


@fuzz(1000)
@given(data=st.data())
def test_changed_endpoints_and_credentials_start_or_say_why(
    tmp_path: Path, model_file: Path, data: st.DataObject
) -> None:
    files = {
        "endpoints.yml": data.draw(blocks(ENDPOINT_BLOCKS)),
        "credentials.yml": data.draw(blocks(CHANNEL_BLOCKS)),
    }
    folder = write_files(tmp_path / f"bot-{next(EXAMPLES)}", changed_files(data, files, NAMES))
    try:
        asyncio.run(start(folder, model_file))
        event("started")
    except ProjectErrors as errors:
        event("mistakes found")
        assert all(error.file and str(error).startswith(error.file) for error in errors.errors)
    except ChatbotError as error:
        event("refused")
        assert str(error).strip() and "\n" not in str(error).strip(), error
