"""Reminders as in Rasa (reminderbot): rasa-sdk's ReminderScheduled / ReminderCancelled from a real
in-process action, fired as an external intent, answered on the conversation's latest channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import StoreUnavailable
from chatbot.project.domain import Origin
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.reminders import ReminderScheduler, due_time, entities_of
from chatbot.server import ServerSettings, create_app
from tests.connectors.servers import WAIT, Receiver, serve
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """\
version: "3.1"
intents: [set_reminder, set_named, cancel, EXTERNAL_reminder, chat]
entities: [plant]
responses:
  utter_reminder:
  - text: "Time to water the {plant}!"
  utter_chat:
  - text: "Nice."
actions: [action_set_reminder, action_set_named, action_cancel_reminder]
slots:
  plant:
    type: text
    influence_conversation: false
    mappings:
    - type: from_entity
      entity: plant
"""

RULES = """\
version: "3.1"
rules:
- rule: set
  steps: [{intent: set_reminder}, {action: action_set_reminder}]
- rule: set named
  steps: [{intent: set_named}, {action: action_set_named}]
- rule: cancel
  steps: [{intent: cancel}, {action: action_cancel_reminder}]
- rule: remind
  steps: [{intent: EXTERNAL_reminder}, {action: utter_reminder}]
- rule: chat
  steps: [{intent: chat}, {action: utter_chat}]
"""

# Real rasa-sdk actions, as reminderbot writes them.
ACTIONS = """\
from datetime import datetime, timedelta

from rasa_sdk import Action
from rasa_sdk.events import ReminderCancelled, ReminderScheduled


def soon(seconds):
    return datetime.now() + timedelta(seconds=seconds)


class SetReminder(Action):
    def name(self):
        return "action_set_reminder"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="I will remind you.")
        return [
            ReminderScheduled(
                "EXTERNAL_reminder",
                trigger_date_time=soon(0.3),
                entities=[{"entity": "plant", "value": "orchid"}],
                name="water",
                kill_on_user_message=False,
            )
        ]


class SetNamed(Action):
    def name(self):
        return "action_set_named"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="Reminder set.")
        return [ReminderScheduled("EXTERNAL_reminder", trigger_date_time=soon(1.0), name="later")]


class CancelReminder(Action):
    def name(self):
        return "action_cancel_reminder"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="Cancelled.")
        return [ReminderCancelled(name="later")]
"""


@pytest.fixture(scope="module")
def plant_bot(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Path]:
    root = tmp_path_factory.mktemp("plants")
    files = {"domain.yml": DOMAIN, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
    return train_files(root, {**files, "actions.py": ACTIONS}), root


def new_agent(plant_bot: tuple[TrainedModel, Path]) -> Agent:
    model, root = plant_bot
    return Agent(model, action_executor=InProcessExecutor(root, "actions"))


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake = Receiver()
    async with serve(fake.app) as served:
        yield fake, f"{served.url}/bot"


def settings(url: str) -> ServerSettings:
    blocks = {
        "rest": EndpointBlock("rest", {}),
        "callback": EndpointBlock("callback", {"url": url}, Origin("credentials.yml", 2)),
    }
    return ServerSettings(credentials=Credentials(blocks), rate_limit=None, enable_api=True)


async def test_a_reminder_fires_on_the_channel_the_user_wrote_on(
    plant_bot: tuple[TrainedModel, Path], receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    agent = new_agent(plant_bot)
    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        sent = {"sender": "ivy", "message": "/set_reminder"}
        assert (await client.post("/webhooks/callback/webhook", json=sent)).status == 200
        messages = await fake.messages.wait_count(2)
    assert [m["text"] for m in messages] == ["I will remind you.", "Time to water the orchid!"]
    assert all(m["recipient_id"] == "ivy" for m in messages)
    events = (await agent.store.load("ivy")).events
    external = [e for e in events if e["event"] == "user"][-1]
    assert external["text"] == "EXTERNAL: EXTERNAL_reminder"
    assert external["input_channel"] == "callback"
    assert external["parse_data"]["entities"] == [{"entity": "plant", "value": "orchid"}]


async def test_a_cancelled_reminder_does_not_fire(
    plant_bot: tuple[TrainedModel, Path], receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    agent = new_agent(plant_bot)
    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        for text in ("/set_named", "/cancel"):
            sent = {"sender": "jo", "message": text}
            assert (await client.post("/webhooks/callback/webhook", json=sent)).status == 200
        await fake.messages.wait_count(2)
        await asyncio.sleep(1.4)  # past the reminder's time
    assert [m["text"] for m in fake.messages.items] == ["Reminder set.", "Cancelled."]


async def test_a_user_message_after_the_reminder_kills_it(
    plant_bot: tuple[TrainedModel, Path], receiver: tuple[Receiver, str]
) -> None:
    """rasa-sdk's default kill_on_user_message=True: the user wrote, so the bot does not remind."""
    fake, url = receiver
    agent = new_agent(plant_bot)
    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        for text in ("/set_named", "/chat"):
            sent = {"sender": "kim", "message": text}
            assert (await client.post("/webhooks/callback/webhook", json=sent)).status == 200
        await fake.messages.wait_count(2)
        await asyncio.sleep(1.4)
    assert [m["text"] for m in fake.messages.items] == ["Reminder set.", "Nice."]
    assert sum(e["event"] == "user" for e in (await agent.store.load("kim")).events) == 2


async def test_a_reminder_on_the_rest_channel_stays_in_the_conversation(
    plant_bot: tuple[TrainedModel, Path],
) -> None:
    """REST answers only in its HTTP response (as Rasa's collecting channel): the reminder's turn
    is still run and stored."""
    agent = new_agent(plant_bot)
    async with TestClient(TestServer(create_app(agent, ServerSettings(rate_limit=None)))) as client:
        response = await client.post(
            "/webhooks/rest/webhook", json={"sender": "lu", "message": "/set_reminder"}
        )
        assert [m["text"] for m in await response.json()] == ["I will remind you."]
        for _ in range(50):
            await asyncio.sleep(0.1)
            events = (await agent.store.load("lu")).events
            if any(e["event"] == "bot" and "orchid" in e.get("text", "") for e in events):
                break
        else:
            pytest.fail("the reminder did not fire")


async def test_trigger_intent_with_output_channel_latest_sends_through_that_channel(
    plant_bot: tuple[TrainedModel, Path], receiver: tuple[Receiver, str]
) -> None:
    """Rasa's external events (reminderbot's EXTERNAL_dry_plant): ``?output_channel=latest``
    answers on the channel the user last wrote on, and the response carries no messages."""
    fake, url = receiver
    agent = new_agent(plant_bot)
    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        sent = {"sender": "mo", "message": "/chat"}
        assert (await client.post("/webhooks/callback/webhook", json=sent)).status == 200
        await fake.messages.wait_count(1)
        body = {"name": "EXTERNAL_reminder", "entities": {"plant": "fern"}}
        response = await client.post(
            "/conversations/mo/trigger_intent?output_channel=latest", json=body
        )
        assert response.status == 200
        answer = await response.json()
        assert "messages" not in answer and answer["tracker"]["sender_id"] == "mo"
        messages = await fake.messages.wait_count(2)
        # Without output_channel: the messages come back in the response, nothing is posted.
        response = await client.post("/conversations/mo/trigger_intent", json=body)
        assert [m["text"] for m in (await response.json())["messages"]] == [
            "Time to water the fern!"
        ]
    assert messages[1] == {"recipient_id": "mo", "text": "Time to water the fern!"}
    assert len(fake.messages.items) == 2
    # As Rasa's external events: on the conversation's latest input channel, whatever channel
    # the bot answers on, and marked external.
    users = [e for e in (await agent.store.load("mo")).events if e["event"] == "user"]
    assert [e["input_channel"] for e in users] == ["callback", "callback", "callback"]
    assert [e["metadata"] for e in users] == [{}, {"is_external": True}, {"is_external": True}]


async def test_a_reminder_left_behind_by_a_restart_does_not_fire(
    plant_bot: tuple[TrainedModel, Path],
) -> None:
    """A reminder that ignores user messages (kill_on_user_message=False) still dies with the
    conversation it was set in: a restart starts another."""
    agent = new_agent(plant_bot)
    await agent.handle_text("/set_reminder", "ned")
    stored = (await agent.store.load("ned")).events
    reminder = next(e for e in stored if e["event"] == "reminder")
    assert reminder["kill_on_user_msg"] is False
    fired = await agent.processor.fire_reminder("ned", reminder)  # still applies
    assert fired is not None and fired.result is not None
    assert [m["text"] for m in fired.result.messages()] == ["Time to water the orchid!"]
    await agent.handle_text("/restart", "ned")
    assert await agent.processor.fire_reminder("ned", reminder) is None
    events = (await agent.store.load("ned", all_sessions=True)).events
    restart = max(i for i, e in enumerate(events) if e["event"] == "restart")
    assert not any(e["event"] == "user" for e in events[restart:])  # nothing fired after it
    assert sum(e.get("text") == "EXTERNAL: EXTERNAL_reminder" for e in events) == 1


async def test_a_reminder_cancelled_or_replaced_in_another_process_does_not_fire(
    plant_bot: tuple[TrainedModel, Path],
) -> None:
    """``chatbot run --workers``: the timer is in the process that set it, the cancel (or a new
    reminder of its name) may come through another; the conversation says so when it is due."""
    agent = new_agent(plant_bot)
    await agent.handle_text("/set_reminder", "ann")  # named "water", kept on user messages
    reminder = next(e for e in (await agent.store.load("ann")).events if e["event"] == "reminder")
    later = [
        {"event": "cancel_reminder", "name": "water"},
        {"event": "cancel_reminder", "intent": "EXTERNAL_reminder"},
        {"event": "cancel_reminder", "entities": [{"entity": "plant", "value": "orchid"}]},
        {**reminder, "date_time": "2030-01-01T00:00:00+00:00"},
    ]
    other = [
        {"event": "cancel_reminder", "name": "later"},
        {"event": "cancel_reminder", "intent": "EXTERNAL_other"},
        {"event": "cancel_reminder", "entities": [{"entity": "plant", "value": "fern"}]},
        {**reminder, "name": "other"},
    ]
    for n, event in enumerate(later + other):
        conversation = f"ann-{n}"
        await agent.handle_text("/set_reminder", conversation)
        stored = (await agent.store.load(conversation)).events
        mine = next(e for e in stored if e["event"] == "reminder")
        await agent.processor.append_events(conversation, [dict(event)])
        fired = await agent.processor.fire_reminder(conversation, mine)
        assert (fired is None) == (event in later), event


# --- the scheduler alone --------------------------------------------------------------------


def event(seconds: float, **extra: Any) -> dict[str, Any]:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return {"event": "reminder", "intent": "EXTERNAL_x", "date_time": when.isoformat(), **extra}


async def test_scheduler_replaces_by_name_and_cancels_by_intent_and_entities() -> None:
    fired: list[tuple[str, str]] = []

    async def fire(conversation_id: str, reminder: dict[str, Any]) -> None:
        fired.append((conversation_id, reminder.get("name", "?")))

    scheduler = ReminderScheduler(fire)
    scheduler.notice("a", [event(0.2, name="n"), event(0.1, name="n")])  # the second replaces
    scheduler.notice("a", [event(0.1, name="m", entities={"plant": "fern"})])
    scheduler.notice("b", [event(0.1, name="m")])
    assert len(scheduler) == 3
    scheduler.notice(
        "a",
        [
            {
                "event": "cancel_reminder",
                "intent": "EXTERNAL_x",
                "entities": [{"entity": "plant", "value": "fern"}],
            }
        ],
    )
    assert len(scheduler) == 2
    await asyncio.sleep(0.5)
    assert sorted(fired) == [("a", "n"), ("b", "m")]
    await scheduler.close()


async def test_scheduler_refuses_a_reminder_without_time_and_closes_its_timers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fire(conversation_id: str, reminder: dict[str, Any]) -> None:
        raise AssertionError("must not fire")

    scheduler = ReminderScheduler(fire)
    scheduler.notice("a", [{"event": "reminder", "intent": "x", "date_time": "tomorrow"}])
    assert len(scheduler) == 0 and "not scheduled" in caplog.text
    scheduler.notice("a", [event(3600.0)])
    assert len(scheduler) == 1
    await asyncio.wait_for(scheduler.close(), WAIT)
    assert len(scheduler) == 0


def test_due_time_and_entities_read_rasa_sdk_forms() -> None:
    assert (
        due_time({"date_time": "2030-01-02T03:04:05+00:00"})
        == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    )
    local = datetime(2030, 1, 2, 3, 4, 5)
    assert due_time({"date_time": local.isoformat()}) == local.timestamp()
    assert due_time({"date_time": 5}) is None
    # At the edges of the calendar, moving to UTC or local time leaves it (were ValueError and
    # OverflowError: a 500 for the events posted with execute_side_effects, a failed turn for a
    # custom action's reminder).
    for edge in ("0001-01-01T00:00:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        assert due_time({"date_time": edge}) is None, edge
    assert entities_of({"entities": {"plant": "fern"}}) == [{"entity": "plant", "value": "fern"}]
    assert entities_of({"entities": [{"entity": "plant", "value": "ivy"}, "junk"]}) == [
        {"entity": "plant", "value": "ivy"}
    ]


async def test_posted_events_have_side_effects_only_when_asked(
    plant_bot: tuple[TrainedModel, Path], receiver: tuple[Receiver, str]
) -> None:
    """Rasa's ``execute_side_effects``: a posted reminder is scheduled and a posted bot message
    sent through ``?output_channel=`` only with it; without it they are just stored."""
    fake, url = receiver
    agent = new_agent(plant_bot)

    def reminder(name: str, plant: str) -> dict[str, Any]:
        when = (datetime.now(timezone.utc) + timedelta(seconds=0.3)).isoformat()
        return {
            "event": "reminder", "intent": "EXTERNAL_reminder", "date_time": when,
            "entities": {"plant": plant}, "name": name, "kill_on_user_msg": False,
        }  # fmt: skip

    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        sent = {"sender": "ola", "message": "/chat"}
        assert (await client.post("/webhooks/callback/webhook", json=sent)).status == 200
        await fake.messages.wait_count(1)
        base = "/conversations/ola/tracker/events"
        said = {"event": "bot", "text": "A word from the operator."}
        assert (await client.post(base, json=reminder("stored", "cactus"))).status == 200
        assert (await client.post(f"{base}?output_channel=callback", json=said)).status == 200
        await asyncio.sleep(0.8)
        assert len(fake.messages.items) == 1  # stored only
        effects = f"{base}?execute_side_effects=true&output_channel=latest"
        assert (await client.post(effects, json=[said, reminder("run", "rose")])).status == 200
        messages = await fake.messages.wait_count(3)
        await asyncio.sleep(0.5)
    assert [m["text"] for m in messages[1:]] == [
        "A word from the operator.",
        "Time to water the rose!",
    ]
    assert len(fake.messages.items) == 3


async def test_a_reminder_that_cannot_fire_is_logged_and_the_others_still_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fired: list[str] = []

    async def fire(conversation_id: str, reminder: dict[str, Any]) -> None:
        if conversation_id == "down":
            raise StoreUnavailable("the conversation store is unavailable")
        fired.append(conversation_id)

    scheduler = ReminderScheduler(fire)
    scheduler.notice("down", [event(0.05, name="a")])
    scheduler.notice("up", [event(0.1, name="b")])
    await asyncio.sleep(0.4)
    assert fired == ["up"] and scheduler.fired == 1
    assert "conversation down: reminder a not fired: the conversation store" in caplog.text
    await scheduler.close()


async def test_a_reminder_at_the_edge_of_the_calendar_is_stored_not_scheduled(
    plant_bot: tuple[TrainedModel, Path],
    receiver: tuple[Receiver, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Was a 500: moving year 1 to UTC overflows."""
    _, url = receiver
    agent = new_agent(plant_bot)
    edge = {"event": "reminder", "intent": "EXTERNAL_reminder", "date_time": "0001-01-01T00:00:00+05:00"}  # fmt: skip
    async with TestClient(TestServer(create_app(agent, settings(url)))) as client:
        path = "/conversations/edge/tracker/events?execute_side_effects=true"
        response = await client.post(path, json=edge)
        assert response.status == 200, await response.text()
        stored = await (await client.get("/conversations/edge/tracker")).json()
    assert [e["date_time"] for e in stored["events"] if e["event"] == "reminder"] == [
        edge["date_time"]
    ]
    assert "not scheduled" in caplog.text
