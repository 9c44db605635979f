"""Forms and slot mappings, run through the processor with real rasa-sdk actions in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.actions.extract_slots import extract_slots
from chatbot.actions.forms import ask_action
from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.project.loader import load_project
from tests.helpers import domain_of
from training.train import train_project

DOMAIN = """
version: "3.1"
intents: [greet, book, inform, affirm, deny, chitchat, stop, vip]
entities:
  - city: {roles: [from, to]}
  - seats
slots:
  origin:
    type: text
    mappings: [{type: from_entity, entity: city, role: from}]
  destination:
    type: text
    mappings: [{type: from_entity, entity: city, role: to}]
  seats:
    type: float
    mappings: [{type: from_entity, entity: seats, not_intent: [chitchat]}]
  window:
    type: bool
    mappings:
      - {type: from_intent, intent: affirm, value: true, conditions: [{active_loop: trip_form, requested_slot: window}]}
      - {type: from_intent, intent: deny, value: false, conditions: [{active_loop: trip_form, requested_slot: window}]}
  note:
    type: text
    mappings: [{type: from_text, not_intent: [stop, chitchat], conditions: [{active_loop: trip_form, requested_slot: note}]}]
  booked_via:
    type: text
    mappings: [{type: from_trigger_intent, intent: book, value: chat, conditions: [{active_loop: trip_form}]}]
  status:
    type: categorical
    values: [gold, silver]
    mappings: [{type: from_intent, intent: vip, value: gold}]
  meal:
    type: text
    mappings: [{type: custom}]
  mood:
    type: text
    mappings: [{type: custom, action: action_sense_mood}]
forms:
  trip_form:
    ignored_intents: [chitchat]
    required_slots: [origin, destination, seats, window, note]
actions: [validate_trip_form, action_ask_seats, action_sense_mood]
responses:
  utter_greet: [{text: hi}]
  utter_ask_origin: [{text: "From where?"}]
  utter_ask_trip_form_destination: [{text: "To where (form-specific)?"}]
  utter_ask_destination: [{text: "To where?"}]
  utter_ask_window: [{text: "Window seat?"}]
  utter_ask_note: [{text: "Any note?"}]
  utter_ask_meal: [{text: "Which meal?"}]
  utter_chitchat: [{text: chitchat}]
  utter_done: [{text: "Booked {seats} seat(s) from {origin} to {destination}"}]
  utter_ask_continue: [{text: "Continue?"}]
"""
DATA = """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: start
  steps: [{intent: book}, {action: trip_form}, {active_loop: trip_form}]
- rule: chitchat in the form
  condition: [{active_loop: trip_form}]
  steps: [{intent: chitchat}, {action: utter_chitchat}, {action: trip_form}, {active_loop: trip_form}]
- rule: stop the form
  condition: [{active_loop: trip_form}]
  steps: [{intent: stop}, {action: action_deactivate_loop}, {active_loop: null}, {action: utter_ask_continue}]
- rule: submit
  condition: [{active_loop: trip_form}]
  steps: [{action: trip_form}, {active_loop: null}, {action: utter_done}]
"""
ACTIONS = """
from rasa_sdk import Action
from rasa_sdk.events import SlotSet
from rasa_sdk.forms import FormValidationAction


class SenseMood(Action):
    def name(self):
        return "action_sense_mood"

    def run(self, dispatcher, tracker, domain):
        text = tracker.latest_message.get("text") or ""
        return [SlotSet("mood", "happy" if "!" in text else "calm")]


class AskSeats(Action):
    def name(self):
        return "action_ask_seats"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="How many seats (custom ask)?")
        return []


class ValidateTripForm(FormValidationAction):
    def name(self):
        return "validate_trip_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain):
        # A business traveller (status gold) also chooses a meal, asked right after seats.
        if tracker.get_slot("status") == "gold":
            at = domain_slots.index("seats") + 1
            return domain_slots[:at] + ["meal"] + domain_slots[at:]
        return domain_slots

    def extract_meal(self, dispatcher, tracker, domain):
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if tracker.get_slot("requested_slot") == "meal" and intent != "chitchat":
            return {"meal": tracker.latest_message.get("text")}
        return {}

    def validate_seats(self, value, dispatcher, tracker, domain):
        if float(value) > 9:
            dispatcher.utter_message(text="At most 9 seats.")
            return {"seats": None}
        return {"seats": value}
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Agent:
    root = tmp_path_factory.mktemp("trip")
    (root / "domain.yml").write_text(DOMAIN)
    (root / "data").mkdir()
    (root / "data" / "rules.yml").write_text(DATA)
    (root / "config.yml").write_text("policies: [{name: RulePolicy}]\n")
    (root / "actions").mkdir()
    (root / "actions" / "__init__.py").write_text("")
    (root / "actions" / "trip.py").write_text(ACTIONS)
    model = train_project(load_project(root), show_progress=False)
    return Agent(model, action_executor=InProcessExecutor(Path(root), "actions"))


async def say(agent: Agent, sender: str, text: str) -> list[str]:
    return [m["text"] for m in await agent.handle_text(text, sender) if m.get("text")]


async def slots(agent: Agent, sender: str) -> dict:
    return Conversation(sender, agent.domain, (await agent.store.load(sender)).events).slots


FROM_OSLO = '/inform{"city": "Oslo"}'


async def test_trigger_intent_and_roles(agent: Agent) -> None:
    s = "full"
    # from_trigger_intent fills booked_via when /book activates the form.
    assert await say(agent, s, "/book") == ["From where?"]
    assert (await slots(agent, s))["booked_via"] == "chat"
    # An entity without the role the mapping names fills nothing.
    await agent.handle_text(FROM_OSLO, s)
    assert (await slots(agent, s))["origin"] is None


async def fill(agent: Agent, sender: str, slot: str, value: object) -> None:
    """Set a slot through the API's event route (what a custom action or a client would do)."""
    await agent.store.append(
        sender,
        [ev.slot(slot, value)],
        start_seq=(await agent.store.load(sender, all_sessions=True)).next_seq,
    )


@pytest.mark.parametrize(
    ("slot", "entity", "role", "intent", "expected"),
    [
        ("origin", "city", "from", "inform", "Oslo"),
        ("origin", "city", None, "inform", None),  # role required by the mapping
        ("destination", "city", "to", "inform", "Oslo"),
        ("seats", "seats", None, "inform", 2),
        ("seats", "seats", None, "chitchat", None),  # not_intent
    ],
)
def test_from_entity_mappings(
    slot: str, entity: str, role: str | None, intent: str, expected: object
) -> None:
    domain = domain_of(DOMAIN)
    conv = Conversation("x", domain)
    value = 2 if entity == "seats" else "Oslo"
    ent = {"entity": entity, "value": value, **({"role": role} if role else {})}
    conv.append(ev.user("x", {"intent": {"name": intent, "confidence": 1.0}, "entities": [ent]}))
    filled = {e["name"]: e["value"] for e in extract_slots(conv, domain)}
    assert filled.get(slot) == expected


@pytest.mark.parametrize(
    ("active", "requested", "intent", "text", "expected"),
    [
        ("trip_form", "window", "affirm", "yes", {"window": True}),
        ("trip_form", "window", "deny", "no", {"window": False}),
        ("trip_form", "note", "deny", "no", {"note": "no"}),  # not window's: wrong requested slot
        (None, None, "affirm", "yes", {}),  # conditions: only while the form asks
        ("trip_form", "note", "inform", "by the window", {"note": "by the window"}),  # from_text
        ("trip_form", "note", "stop", "stop", {}),  # from_text not_intent
        ("trip_form", "note", "chitchat", "nice weather", {}),  # ignored_intents of the form
        (None, None, "vip", "I'm gold", {"status": "gold"}),  # from_intent without conditions
    ],
)
def test_intent_and_text_mappings_with_conditions(
    active: str | None, requested: str | None, intent: str, text: str, expected: dict
) -> None:
    domain = domain_of(DOMAIN)
    conv = Conversation("x", domain)
    if active:
        conv.extend(
            [ev.action("trip_form"), ev.active_loop(active), ev.slot("requested_slot", requested)]
        )
    conv.append(ev.user(text, {"intent": {"name": intent, "confidence": 1.0}, "entities": []}))
    assert {e["name"]: e["value"] for e in extract_slots(conv, domain)} == expected


def test_ask_priority_custom_action_then_form_specific_then_generic() -> None:
    domain = domain_of(DOMAIN)
    assert ask_action(domain, "trip_form", "seats") == "action_ask_seats"
    assert ask_action(domain, "trip_form", "destination") == "utter_ask_trip_form_destination"
    assert ask_action(domain, "trip_form", "origin") == "utter_ask_origin"
    assert ask_action(domain, "trip_form", "nothing") is None


async def test_a_trip_from_start_to_submit(agent: Agent) -> None:
    s = "trip"
    assert await say(agent, s, "/book") == ["From where?"]
    # Payload messages carry no entity roles: origin and destination are set as a client
    # would through the API (the role mappings are tested above).
    await fill(agent, s, "origin", "Oslo")
    await fill(agent, s, "destination", "Rome")
    assert await say(agent, s, '/inform{"seats": 12}') == [
        "At most 9 seats.",
        "How many seats (custom ask)?",
    ]
    assert await say(agent, s, '/inform{"seats": 2}') == ["Window seat?"]
    assert await say(agent, s, "/affirm") == ["Any note?"]
    assert await say(agent, s, "aisle please") == ["Booked 2 seat(s) from Oslo to Rome"]
    final = await slots(agent, s)
    assert (
        final["window"] is True
        and final["note"] == "aisle please"
        and final["requested_slot"] is None
    )


async def test_digression_and_return_reasks_without_validating(agent: Agent) -> None:
    s = "chat"
    await say(agent, s, "/book")
    assert await say(agent, s, "/chitchat") == ["chitchat", "From where?"]


async def test_stop_deactivates_the_form(agent: Agent) -> None:
    s = "stop"
    await say(agent, s, "/book")
    assert await say(agent, s, "/stop") == ["Continue?"]
    final = await slots(agent, s)
    assert final["requested_slot"] is None
    conv = Conversation(s, agent.domain, (await agent.store.load(s)).events)
    assert conv.active_loop_name is None


async def test_validation_action_can_change_required_slots(agent: Agent) -> None:
    s = "vip"
    await say(agent, s, "/book")
    await fill(agent, s, "status", "gold")
    await fill(agent, s, "origin", "Oslo")
    await fill(agent, s, "destination", "Rome")
    # seats given: the validator's required_slots puts "meal" next, before the window.
    assert await say(agent, s, '/inform{"seats": 1}') == ["Which meal?"]
    # "meal" has a custom mapping: the validator's extract_meal fills it from the text.
    assert await say(agent, s, "vegetarian") == ["Window seat?"]
    assert (await slots(agent, s))["meal"] == "vegetarian"


async def test_custom_mapping_action_fills_its_slot_after_each_message(agent: Agent) -> None:
    await agent.handle_text("/greet", "mood")
    assert (await slots(agent, "mood"))["mood"] == "calm"
    await agent.handle_text("/greet!", "mood2")
    events = (await agent.store.load("mood2")).events
    user_at = max(i for i, e in enumerate(events) if e["event"] == "user")
    assert {"event": "slot", "name": "mood", "value": "happy"}.items() <= events[
        user_at + 1
    ].items()


async def test_back_after_a_digression_the_validation_action_chooses_the_slot_to_ask(
    agent: Agent,
) -> None:
    """As Rasa: the form coming back runs its validation action without candidates, whose
    required_slots still puts "meal" next (the domain's order would ask for the window)."""
    s = "vip-digress"
    await say(agent, s, "/book")
    await fill(agent, s, "status", "gold")
    await fill(agent, s, "origin", "Oslo")
    await fill(agent, s, "destination", "Rome")
    assert await say(agent, s, '/inform{"seats": 1}') == ["Which meal?"]
    assert (await say(agent, s, "/chitchat"))[-1] == "Which meal?"
