"""The restaurant bot's rasa-sdk actions through a real action server (``python -m rasa_sdk``) and
in-process through rasa-sdk's own executor: both give the same conversation."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from tests.helpers import DOMAINS, dialogue_model, free_port, stop_process

STARTUP_SECONDS = 60.0
POLL_SECONDS = 0.1

# Every slot of the form, with wrong answers that the validation action refuses first.
CONVERSATION = [
    "/greet",
    "/request_restaurant",
    '/inform{"cuisine": "klingon"}',
    '/inform{"cuisine": "Italian"}',
    '/inform{"number": "-2"}',
    '/inform{"number": "4"}',
    "/affirm",
    "/deny",
    "/thankyou",
]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    """A real rasa-sdk action server with the restaurant bot's actions; its webhook URL."""
    port = free_port()
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(DOMAINS / "restaurant")}
    process = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=DOMAINS / "restaurant",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        # Poll its /health until it answers (it starts in a second or two).
        while not answers(f"http://127.0.0.1:{port}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the rasa-sdk action server did not start:\n{output}")
            time.sleep(POLL_SECONDS)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def restaurant_model() -> TrainedModel:
    return dialogue_model("restaurant")


def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what differs between two runs: times and the user messages' new ids."""
    out = []
    for event in events:
        kept = {k: v for k, v in event.items() if k not in ("timestamp", "message_id")}
        if isinstance(kept.get("parse_data"), dict):
            kept["parse_data"] = {k: v for k, v in kept["parse_data"].items() if k != "message_id"}
        out.append(kept)
    return out


async def talk(agent: Agent, sender: str) -> tuple[list[list[str]], list[dict[str, Any]]]:
    agent.processor.rng = random.Random(7)  # the same response variations on both sides
    replies = []
    for text in CONVERSATION:
        messages = await agent.handle_text(text, sender)
        replies.append([m.get("text") or "" for m in messages])
    events = (await agent.store.load(sender, all_sessions=True)).events
    return replies, events


async def test_action_server_and_in_process_give_the_same_conversation(
    action_server: str, restaurant_model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    remote = HTTPActionExecutor(action_server)
    try:
        over_http = await talk(Agent(restaurant_model, action_executor=remote), "alice")
    finally:
        await remote.close()
    local = InProcessExecutor(DOMAINS / "restaurant", "actions")
    with caplog.at_level(logging.WARNING, logger="rasa_sdk"):
        in_process = await talk(Agent(restaurant_model, action_executor=local), "alice")
    # Every slot of the form has its validation method: rasa-sdk has nothing to warn about.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rasa_sdk")] == []

    assert comparable(over_http[1]) == comparable(in_process[1])
    assert over_http[0] == in_process[0]

    replies, events = over_http
    assert any("don't know any restaurant with that cuisine" in r for r in replies[2])
    assert any("positive whole number" in r for r in replies[4])
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["cuisine"] == "italian"  # normalised by the validation action
    assert slots["num_people"] == 4
    assert slots["outdoor_seating"] is True
    assert slots["preferences"] == "no additional preferences"
    assert any(r.startswith("All done!") for r in replies[7])


async def test_action_server_health(action_server: str) -> None:
    executor = HTTPActionExecutor(action_server)
    try:
        assert executor.health_url.endswith("/health")
        assert await executor.ping() is True
    finally:
        await executor.close()
