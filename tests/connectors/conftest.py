"""The restaurant bot, trained once per session, and its app served on a real loopback port."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractAsyncContextManager

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.server.settings import ServerSettings
from connectors.base import InputChannel
from tests.connectors.servers import ServeChannel, Served, app_with, serve
from tests.helpers import DOMAINS, example_project

RULES_AND_MEMORY = {"RulePolicy", "MemoizationPolicy"}


@pytest.fixture(scope="session")
def restaurant_model() -> TrainedModel:
    """The restaurant bot with its rules and memorized stories only (the channels' tests need
    its answers, not the LSTM's generalization); messages are ``/intent`` payloads (no NLU)."""
    from training.train import train_project

    project = example_project("restaurant")
    policies = tuple(p for p in project.config.policies if p.name in RULES_AND_MEMORY)
    project.config = dataclasses.replace(project.config, policies=policies)
    return train_project(project, show_progress=False)


@pytest.fixture
def agent(restaurant_model: TrainedModel) -> Agent:
    """A fresh agent (conversations in memory) with the bot's custom actions in-process."""
    executor = InProcessExecutor(DOMAINS / "restaurant", "actions")
    return Agent(restaurant_model, action_executor=executor)


@pytest.fixture
def serve_channel(agent: Agent) -> ServeChannel:
    """``async with serve_channel(channel[, settings]) as served``: the app on a port."""

    def start(
        channel: InputChannel, settings: ServerSettings | None = None
    ) -> AbstractAsyncContextManager[Served]:
        return serve(app_with(agent, channel, settings))

    return start
