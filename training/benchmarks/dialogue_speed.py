"""Speed of the dialogue model on the default example bot (domains/restaurant).

- training: the bot's policies as its config.yml has them (memoization, rules, TEDPolicy served
  by the LSTM with ``max_history: 5``), and the LSTM alone with its own defaults (whole history);
- one prediction step of the LSTM policy (``predict`` with one new state since the last call);
- one user turn at turn 5 and at turn 500 of the same conversation, rebuilt from its events for
  every turn: the LSTM policy's share, the whole ensemble's, and rebuilding the ``Conversation``
  from the stored events (what a process that did not answer the previous turn has to do);
- the same through the whole stack, ``Agent.handle_text`` with the in-memory store (lock, load,
  session, intent from ``/intent``, predict and run actions until listening, save, reply), for
  the configured model: what a user waits for, less the NLU and the network.

    .venv/bin/python -m training.benchmarks.dialogue_speed [--set ensemble_size=3 ...]

``--set`` gives the LSTM policy a setting (both the configured one and the one trained alone).

Prints one JSON object per result (seconds; the 1-minute load average, as the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import ACTION_LISTEN, ACTION_SESSION_START
from chatbot.project.loader import load_project
from chatbot.project.project import Project
from training.benchmarks._nlu_common import setting
from training.dialogue import train_policies
from training.lstm import make_lstm_trainer

REPO_ROOT = Path(__file__).resolve().parents[2]
BOT = REPO_ROOT / "domains" / "restaurant"
# Intents that the restaurant bot answers and then listens (no form, no custom action).
SMALL_TALK = ("greet", "chitchat", "bot_challenge", "thankyou")


# The LSTM policy settings of this run (``--set``), in every result line.
RUN_SETTINGS: dict[str, Any] = {}


def emit(result: dict[str, Any]) -> None:
    result["settings"] = RUN_SETTINGS
    result["load_avg"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result), flush=True)


def with_policies(project: Project, *policies: ComponentConfig) -> Project:
    config = dataclasses.replace(project.config, policies=policies)
    return dataclasses.replace(project, config=config)


def train(project: Project) -> tuple[TrainedModel, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    policies, ensemble = train_policies(
        project, lstm_trainer=make_lstm_trainer(seed=42, show_progress=False)
    )
    took = time.perf_counter() - wall, time.process_time() - cpu
    return TrainedModel(project.domain, policies, None, ensemble), *took


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_s": round(statistics.median(ordered), 6),
        "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 6),
    }


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def user(intent: str) -> dict[str, Any]:
    return ev.user(f"/{intent}", {"intent": {"name": intent, "confidence": 1.0}, "entities": []})


def conversation_turns(
    model: TrainedModel, at: tuple[int, ...], window: int = 30
) -> list[dict[str, Any]]:
    """One long small-talk conversation; per-turn times over ``window`` turns from each of
    ``at`` (turn 5: turns 5-34)."""
    ensemble = model.make_ensemble()
    lstm = next(p for p in model.policies if isinstance(p, LSTMPolicy))
    rng = random.Random(0)
    events = [
        ev.action(ACTION_SESSION_START),
        ev.simple("session_started"),
        ev.action(ACTION_LISTEN),
    ]
    record: dict[str, list[float]] = {"lstm": [], "ensemble": [], "rebuild": []}
    for _ in range(max(at) + window):
        events.append(user(rng.choice(SMALL_TALK)))
        start = time.perf_counter()
        conversation = Conversation("bench", model.domain, events)  # as the server does
        record["rebuild"].append(time.perf_counter() - start)
        lstm_s = ensemble_s = 0.0
        for _ in range(10):
            start = time.perf_counter()
            lstm.predict(conversation)
            lstm_s += time.perf_counter() - start
            start = time.perf_counter()
            prediction = ensemble.predict(conversation)
            ensemble_s += time.perf_counter() - start
            conversation.append(ev.action(prediction.action))
            events.append(conversation.events[-1])
            if prediction.action == ACTION_LISTEN:
                break
        record["lstm"].append(lstm_s)
        record["ensemble"].append(ensemble_s)
    results = []
    for turn in at:
        for part, seconds in record.items():
            results.append(
                {"name": f"turn_latency_{part}", "split": "restaurant", "turn": turn}
                | percentiles(seconds[turn - 1 : turn - 1 + window])
            )
    return results


def agent_turns(model: TrainedModel, at: tuple[int, ...], window: int = 30) -> list[dict[str, Any]]:
    """One long small-talk conversation through ``Agent.handle_text``; per-turn times over
    ``window`` turns from each of ``at``."""

    async def talk() -> list[float]:
        agent = Agent(model)
        rng = random.Random(0)
        seconds = []
        try:
            for _ in range(max(at) + window):
                text = f"/{rng.choice(SMALL_TALK)}"
                seconds.append(-time.perf_counter())
                replies = await agent.handle_text(text, "bench")
                seconds[-1] += time.perf_counter()
                assert replies, text
        finally:
            await agent.close()
        return seconds

    seconds = asyncio.run(talk())
    return [
        {"name": "turn_latency_agent", "split": "restaurant", "turn": turn}
        | percentiles(seconds[turn - 1 : turn - 1 + window])
        for turn in at
    ]


def prediction_steps(model: TrainedModel, n: int = 2000) -> list[float]:
    """``predict`` with one new state since the last call, in one long conversation."""
    lstm = next(p for p in model.policies if isinstance(p, LSTMPolicy))
    rng = random.Random(1)
    conversation = Conversation("steps", model.domain, [ev.action(ACTION_LISTEN)])
    times = []
    for i in range(n):
        if i % 2 == 0:
            conversation.append(user(rng.choice(SMALL_TALK)))
        times.append(timed(lambda: lstm.predict(conversation)))
        conversation.append(ev.action("utter_chitchat" if i % 2 == 0 else ACTION_LISTEN))
    return times[100:]


def with_lstm_settings(project: Project, params: dict[str, Any]) -> Project:
    """``project`` with ``params`` added to its LSTM policy's settings (TEDPolicy, LSTMPolicy)."""
    policies = tuple(
        ComponentConfig(p.name, {**p.params, **params}, p.origin)
        if p.name in ("TEDPolicy", "LSTMPolicy")
        else p
        for p in project.config.policies
    )
    return with_policies(project, *policies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set", type=setting, action="append", default=[], help="an LSTM policy setting K=V"
    )
    params = dict(parser.parse_args().set)
    RUN_SETTINGS.update(params)
    logging.basicConfig(level=logging.WARNING)
    project = with_lstm_settings(load_project(BOT), params)
    configured, wall, cpu = train(project)
    emit(
        {
            "name": "train_policies_as_configured",
            "split": "restaurant",
            "train_s": round(wall, 2),
            "train_cpu_s": round(cpu, 2),
        }
    )
    lstm_only = with_policies(project, ComponentConfig("LSTMPolicy", params))
    whole, wall, cpu = train(lstm_only)
    emit(
        {
            "name": "train_lstm_whole_history",
            "split": "restaurant",
            "train_s": round(wall, 2),
            "train_cpu_s": round(cpu, 2),
        }
    )
    for label, model in (("whole_history", whole), ("max_history_5", configured)):
        emit(
            {"name": f"predict_step_{label}", "split": "restaurant"}
            | percentiles(prediction_steps(model))
        )
    # The configured ensemble (memoization, rules, LSTM with max_history 5) and the LSTM reading
    # the whole conversation with rules around it.
    rules = next(p for p in configured.policies if p.name == "RulePolicy")
    whole_with_rules = TrainedModel(project.domain, [rules, *whole.policies], None, {})
    for label, model in (("whole_history", whole_with_rules), ("max_history_5", configured)):
        for result in conversation_turns(model, (5, 500)):
            result["name"] += f"_{label}"
            emit(result)
    for result in agent_turns(configured, (5, 500)):
        result["name"] += "_max_history_5"
        emit(result)


if __name__ == "__main__":
    main()
