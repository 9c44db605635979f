"""Sessions and the processor's loop as Rasa 3's: ``session_started_metadata``, carry-over, the
action limit, follow-ups, reminders due after a session expired, external events, the times of an
action's events, the tracker JSON before any message, and ``action_send_text``. Real rasa-sdk
actions run in-process on a small rules-only bot (messages as /intent payloads)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.messages import collected
from chatbot.project.domain_reader import domain_to_dict
from chatbot.project.loader import load_project
from chatbot.project.stories import SlotStep
from chatbot.project.validation import validate_project
from chatbot.server.story import stories_yaml
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """\
version: "3.1"
intents: [greet, loop_me, unknown_followup, old_times, EXTERNAL_remind, send]
entities: [name]
slots:
  name:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: name}]
  city:
    type: text
    influence_conversation: false
    initial_value: Paris
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_reminded: [{text: "REMINDED"}]
actions: [action_loop, action_unknown_followup, action_old_times]
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: loop
  steps: [{intent: loop_me}, {action: action_loop}]
- rule: unknown follow-up
  steps: [{intent: unknown_followup}, {action: action_unknown_followup}]
- rule: old times
  steps: [{intent: old_times}, {action: action_old_times}]
- rule: remind
  steps: [{intent: EXTERNAL_remind}, {action: utter_reminded}]
- rule: send
  steps: [{intent: send}, {action: action_send_text}]
"""

ACTIONS = """\
from rasa_sdk import Action
from rasa_sdk.events import ActionExecuted, FollowupAction, SessionStarted, SlotSet


class Loop(Action):
    def name(self):
        return "action_loop"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="loop")
        return [FollowupAction("action_loop")]


class UnknownFollowup(Action):
    def name(self):
        return "action_unknown_followup"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="ok")
        return [FollowupAction("action_does_not_exist")]


class OldTimes(Action):
    def name(self):
        return "action_old_times"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="old")
        return [SlotSet("name", "T", timestamp=1000.0)]


class SessionStart(Action):  # used where the domain lists action_session_start
    def name(self):
        return "action_session_start"

    def run(self, dispatcher, tracker, domain):
        metadata = tracker.get_slot("session_started_metadata")
        dispatcher.utter_message(text=f"welcome {metadata}")
        return [SessionStarted(), SlotSet("name", "Zed"), ActionExecuted("action_listen")]
"""


def _train(root: Path, domain: str) -> TrainedModel:
    files = {"domain.yml": domain, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
    return train_files(root, {**files, "actions.py": ACTIONS})


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Path]:
    root = tmp_path_factory.mktemp("sessions")
    return _train(root, DOMAIN), root


def new_agent(bot: tuple[TrainedModel, Path]) -> Agent:
    model, root = bot
    return Agent(model, action_executor=InProcessExecutor(root, "actions"))


async def events_of(agent: Agent, sender: str) -> list[dict[str, Any]]:
    return (await agent.store.load(sender, all_sessions=True)).events


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def later_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The clock moved on (past the bot's 60-minute sessions, say)."""
    now = time.time() + seconds
    monkeypatch.setattr("chatbot.sessions.time.time", lambda: now)


# --- session_started_metadata and carry-over --------------------------------------------------


async def test_the_starting_messages_metadata_is_set_before_the_session_starts(
    bot: tuple[TrainedModel, Path], tmp_path: Path
) -> None:
    """Rasa's ``_update_tracker_session``: the metadata is set on ``session_started_metadata``
    before ``action_session_start``, which (logged without a policy, as Rasa's) carries it."""
    agent = new_agent(bot)
    await agent.handle_text("/greet", "md1", metadata={"user": "u-42"})
    events = await events_of(agent, "md1")
    assert [(e["event"], e.get("name")) for e in events[:5]] == [
        ("slot", "session_started_metadata"),
        ("action", "action_session_start"),
        ("session_started", None),
        ("slot", "session_started_metadata"),
        ("action", "action_listen"),
    ]
    assert events[0]["value"] == events[3]["value"] == {"user": "u-42"}
    assert events[1]["policy"] is None
    conversation = Conversation("md1", agent.domain, events)
    assert conversation.as_tracker()["slots"]["session_started_metadata"] == {"user": "u-42"}
    # A slot every conversation has, not one of the domain's: not featurized, not in its JSON.
    assert not any("session_started_metadata" in str(s) for s in conversation.past_states())
    assert "session_started_metadata" not in domain_to_dict(agent.domain).get("slots", {})
    # The conversation as a story (``GET .../story``) names the slot, as Rasa's: a project
    # that reads it back does not take it for a slot its domain lacks.
    root = tmp_path / "readback"
    files = {"domain.yml": DOMAIN, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
    for name, text in {**files, "data/stories.yml": stories_yaml("md1", events)}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    project = load_project(root)
    assert any(
        isinstance(step, SlotStep) and "session_started_metadata" in dict(step.slots)
        for story in project.stories
        for step in story.steps
    )
    assert validate_project(project) == []
    # A message without metadata sets nothing.
    await agent.handle_text("/greet", "md2")
    assert not any(e["event"] == "slot" for e in await events_of(agent, "md2"))


async def test_a_custom_session_start_reads_the_metadata(tmp_path: Path) -> None:
    custom = DOMAIN.replace("actions: [", "actions: [action_session_start, ")
    agent = Agent(_train(tmp_path, custom), action_executor=InProcessExecutor(tmp_path, "actions"))
    reply = await agent.handle_text("/greet", "cs1", metadata={"user": "u-42"})
    assert texts(reply) == ["welcome {'user': 'u-42'}", "Hello!"]
    assert Conversation("cs1", agent.domain, await events_of(agent, "cs1")).slots["name"] == "Zed"


async def test_carry_over_replays_the_slot_events_as_they_were(
    bot: tuple[TrainedModel, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa's ``_slot_set_events_from_tracker``: a slot set to None stays None (not back to its
    initial value), metadata is kept, ``requested_slot`` is carried too."""
    agent = new_agent(bot)
    await agent.handle_text("/greet", "carry")
    await agent.processor.append_events(
        "carry",
        [
            {"event": "slot", "name": "city", "value": None},
            {"event": "slot", "name": "name", "value": "Ann", "metadata": {"src": "crm"}},
            {"event": "slot", "name": "requested_slot", "value": "city"},
        ],
    )
    later_by(monkeypatch, 2 * 3600)
    await agent.handle_text("/greet", "carry")
    events = await events_of(agent, "carry")
    start = max(i for i, e in enumerate(events) if e.get("name") == "action_session_start")
    carried = [e for e in events[start:] if e["event"] == "slot"]
    assert [(e["name"], e["value"], e.get("metadata")) for e in carried] == [
        ("city", None, None),
        ("name", "Ann", {"src": "crm"}),
        ("requested_slot", "city", None),
    ]
    slots = Conversation("carry", agent.domain, events).slots
    assert (slots["city"], slots["name"], slots["requested_slot"]) == (None, "Ann", "city")


# --- the prediction loop ------------------------------------------------------------------------


async def test_max_number_of_predictions_sets_the_action_limit(
    bot: tuple[TrainedModel, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa's MAX_NUMBER_OF_PREDICTIONS; we still listen after the limit. Follow-ups are
    logged with Rasa's policy name ``followup_action``."""
    monkeypatch.setenv("MAX_NUMBER_OF_PREDICTIONS", "3")
    agent = new_agent(bot)
    assert texts(await agent.handle_text("/loop_me", "lim")) == ["loop"] * 3
    events = await events_of(agent, "lim")
    loops = [e["policy"] for e in events if e["event"] == "action" and e["name"] == "action_loop"]
    assert loops == ["RulePolicy", "followup_action", "followup_action"]
    assert events[-1]["name"] == "action_listen"


async def test_a_bad_max_number_of_predictions_is_warned_about_and_the_default_used(
    bot: tuple[TrainedModel, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MAX_NUMBER_OF_PREDICTIONS", "three")
    with caplog.at_level(logging.WARNING, logger="chatbot.processor"):
        agent = new_agent(bot)
    assert agent.processor.max_actions == 10
    assert "MAX_NUMBER_OF_PREDICTIONS='three' is not a whole number of at least 1" in caplog.text


async def test_an_unknown_follow_up_action_is_ignored_and_the_next_action_predicted(
    bot: tuple[TrainedModel, Path], caplog: pytest.LogCaptureFixture
) -> None:
    agent = new_agent(bot)
    with caplog.at_level(logging.WARNING, logger="chatbot.processor"):
        reply = await agent.handle_text("/unknown_followup", "fu")
    assert texts(reply) == ["ok"]  # the rule listens next; no apology
    assert "'action_does_not_exist'; will ignore the action and predict the next" in caplog.text
    events = await events_of(agent, "fu")
    assert [e["name"] for e in events if e["event"] == "action"][-2:] == [
        "action_unknown_followup",
        "action_listen",
    ]
    assert events[-1]["policy"] == "RulePolicy"


async def test_an_actions_events_are_timed_when_they_are_logged(
    bot: tuple[TrainedModel, Path],
) -> None:
    """Rasa's ``update_with_events(override_timestamp=True)``: an action's own times are not
    kept, so the log stays in time order (and ``?until=`` sees no made-up past)."""
    agent = new_agent(bot)
    started = time.time()
    await agent.handle_text("/old_times", "ts")
    events = await events_of(agent, "ts")
    at = next(i for i, e in enumerate(events) if e.get("name") == "action_old_times")
    turn = events[at:]
    assert [e["event"] for e in turn] == ["action", "bot", "slot", "action"]
    times = [e["timestamp"] for e in events]
    assert times == sorted(times)
    assert turn[2]["timestamp"] >= started


# --- reminders and external events ------------------------------------------------------------


def reminder_event(name: str) -> dict[str, Any]:
    return {
        "event": "reminder",
        "intent": "EXTERNAL_remind",
        "date_time": datetime.now(timezone.utc).isoformat(),
        "name": name,
        "kill_on_user_msg": False,
    }


async def test_a_reminder_due_after_the_session_expired_starts_a_new_one_and_is_dropped(
    bot: tuple[TrainedModel, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa's ``handle_reminder``: the expired session is renewed first; the reminder is then
    not among the new session's events, so it does not fire."""
    agent = new_agent(bot)
    await agent.handle_text("/greet", "rem")
    await agent.processor.append_events("rem", [reminder_event("r1")])
    stored = next(e for e in await events_of(agent, "rem") if e["event"] == "reminder")
    later_by(monkeypatch, 2 * 3600)
    assert await agent.processor.fire_reminder("rem", stored) is None
    events = await events_of(agent, "rem")
    starts = [i for i, e in enumerate(events) if e.get("name") == "action_session_start"]
    assert len(starts) == 2
    assert not any(e["event"] == "user" for e in events[starts[1] :])


async def test_a_reminder_is_an_external_event_on_the_latest_input_channel(
    bot: tuple[TrainedModel, Path],
) -> None:
    """Rasa's ``UserUttered.create_external``: the intent's name alone, ``is_external`` in the
    metadata, no message id, the channel the user last wrote on."""
    agent = new_agent(bot)
    await agent.handle_text("/greet", "ext", input_channel="slack", metadata={"thread": "t1"})
    await agent.processor.append_events("ext", [reminder_event("r2")])
    stored = next(e for e in await events_of(agent, "ext") if e["event"] == "reminder")
    fired = await agent.processor.fire_reminder("ext", stored)
    assert fired is not None and texts(fired.result.messages()) == ["REMINDED"]
    assert (fired.channel, fired.metadata) == ("slack", {"thread": "t1"})
    user = [e for e in await events_of(agent, "ext") if e["event"] == "user"][-1]
    assert (user["text"], user["input_channel"], user["message_id"]) == (
        "EXTERNAL: EXTERNAL_remind",
        "slack",
        None,
    )
    assert user["metadata"] == user["parse_data"]["metadata"] == {"is_external": True}
    assert user["parse_data"]["intent"] == {"name": "EXTERNAL_remind"}


# --- the tracker JSON and action_send_text ------------------------------------------------------


async def test_latest_message_before_any_user_message_is_rasas_empty_one(
    bot: tuple[TrainedModel, Path],
) -> None:
    empty: dict[str, Any] = {
        "intent": {},
        "entities": [],
        "text": None,
        "message_id": None,
        "metadata": {},
    }
    agent = new_agent(bot)
    assert Conversation("new", agent.domain).as_tracker()["latest_message"] == empty
    await agent.handle_text("/greet", "rs")
    await agent.processor.append_events("rs", [{"event": "restart"}])
    conversation = Conversation("rs", agent.domain, await events_of(agent, "rs"))
    assert conversation.as_tracker()["latest_message"] == empty


async def test_action_send_text_does_not_say_what_the_users_metadata_asks(
    bot: tuple[TrainedModel, Path],
) -> None:
    """Rasa reads the policy's action metadata, which our policies never give: the bot logs
    Rasa's empty text, which the REST channel (as Rasa's channels) does not send."""
    agent = new_agent(bot)
    metadata = {"message": {"text": "INJECTED BY USER METADATA"}}
    reply = await agent.handle_text("/send", "st", metadata=metadata)
    assert collected(reply) == []
    bots = [e for e in await events_of(agent, "st") if e["event"] == "bot"]
    assert [e["text"] for e in bots] == [""]
