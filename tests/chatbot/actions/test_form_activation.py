"""A form's activation as Rasa 3's ``FormAction.activate`` runs it: the slot extraction runs again
with the form active, so the message that starts the form fills the slots whose mappings name the
form and the ``from_trigger_intent`` ones; then the validation action checks the form's slots that
hold a value. And a form interrupted by ``LoopInterrupted`` validates again after the next action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatbot.actions.base import ActionContext
from chatbot.actions.extract_slots import extract_slots
from chatbot.actions.forms import FormAction
from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.errors import ActionRejected
from tests.helpers import RULES_ONLY, domain_of, train_files

DOMAIN = """
version: "3.1"
intents: [start_form, inform, greet, other_form]
entities: [cuisine, number, account]
slots:
  cuisine:
    type: text
    mappings: [{type: from_entity, entity: cuisine, conditions: [{active_loop: restaurant_form}]}]
  people:
    type: float
    mappings: [{type: from_entity, entity: number}]
  membership:  # not one of the form's slots; its mapping names the form
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: account, conditions: [{active_loop: restaurant_form}]}]
  triggered:  # not one of the form's slots, no conditions
    type: bool
    influence_conversation: false
    mappings: [{type: from_trigger_intent, intent: start_form, value: true}]
  via_other:  # a trigger mapping for the other form only
    type: text
    influence_conversation: false
    mappings:
      - {type: from_trigger_intent, intent: [start_form, inform], value: other,
         conditions: [{active_loop: other_form, requested_slot: people}]}
forms:
  restaurant_form:
    required_slots: [cuisine, people]
  other_form:
    required_slots: [people]
actions: [validate_restaurant_form]
responses:
  utter_ask_cuisine: [{text: "What cuisine?"}]
  utter_ask_people: [{text: "How many people?"}]
  utter_submit: [{text: "Booked {cuisine}."}]
"""

RULES = """
version: "3.1"
rules:
- rule: start
  steps: [{intent: start_form}, {action: restaurant_form}, {active_loop: restaurant_form}]
- rule: submit
  condition: [{active_loop: restaurant_form}]
  steps: [{action: restaurant_form}, {active_loop: null}, {action: utter_submit}]
"""

ACTIONS = """
from rasa_sdk.forms import FormValidationAction


class ValidateRestaurantForm(FormValidationAction):
    def name(self):
        return "validate_restaurant_form"

    def validate_cuisine(self, value, dispatcher, tracker, domain):
        if value == "pizza":
            dispatcher.utter_message(text="No pizza here.")
            return {"cuisine": None}
        return {"cuisine": value.title()}
"""


def user(intent: str, **entities: Any) -> dict[str, Any]:
    parse = {
        "intent": {"name": intent, "confidence": 1.0},
        "entities": [{"entity": k, "value": v} for k, v in entities.items()],
    }
    return ev.user(f"/{intent}", parse)


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


# The domain without the validation action.
NO_VALIDATOR = domain_of(DOMAIN.replace("actions: [validate_restaurant_form]\n", ""))


async def run_form(name: str, conv: Conversation) -> list[dict[str, Any]]:
    """The form's events, run without other actions (it asks for no slot)."""
    return await FormAction(name).run(ActionContext(conv, conv.domain))


# -- without a validation action (the form's own run, as Rasa's unit tests run it) --------------


async def test_a_slot_whose_mapping_names_the_form_is_filled_as_it_starts() -> None:
    """Rasa's test_extract_slots_with_mapping_conditions_during_form_activation: the extraction
    after the message fills nothing (no form is active); the form's activation does."""
    conv = Conversation(
        "c", NO_VALIDATOR, [ev.action("action_listen"), user("greet", cuisine="thai")]
    )
    assert extract_slots(conv, NO_VALIDATOR) == []
    events = await run_form("restaurant_form", conv)
    assert [(e["event"], e.get("name"), e.get("value")) for e in events] == [
        ("active_loop", "restaurant_form", None),
        ("slot", "cuisine", "thai"),
        ("slot", "requested_slot", "people"),
    ]


async def test_slots_outside_the_form_are_filled_as_it_starts() -> None:
    """A mapping that names the form, and a ``from_trigger_intent`` one without conditions, fill
    their slots although the form does not require them; a trigger mapping for another form
    does not."""
    message = user("start_form", account="gold")
    conv = Conversation("c", NO_VALIDATOR, [ev.action("action_listen"), message])
    filled = slot_events(await run_form("restaurant_form", conv))
    assert filled["membership"] == "gold" and filled["triggered"] is True
    assert "via_other" not in filled


@pytest.mark.parametrize(
    ("active", "requested", "intent", "expected"),
    [
        (None, None, "start_form", {}),  # no form active: a trigger mapping never applies
        ("restaurant_form", "cuisine", "start_form", {"triggered": True}),  # any form
        ("restaurant_form", "cuisine", "inform", {}),  # not the mapping's intent
        # conditions: the form they name (their requested_slot does not matter)
        ("other_form", None, "inform", {"via_other": "other"}),
        ("other_form", None, "start_form", {"triggered": True, "via_other": "other"}),
    ],
)
def test_trigger_intent_mappings_apply_while_a_form_is_active(
    active: str | None, requested: str | None, intent: str, expected: dict[str, Any]
) -> None:
    """Rasa's ``extract_slot_value_from_predefined_mapping``: a ``from_trigger_intent`` mapping
    applies after any message while a form is active (one its conditions name, if it has any)."""
    domain = domain_of(DOMAIN)
    conv = Conversation("c", domain)
    if active:
        conv.extend([ev.active_loop(active), ev.slot("requested_slot", requested)])
    conv.extend([ev.action("action_listen"), user(intent)])
    assert slot_events(extract_slots(conv, domain)) == expected


async def test_an_interrupted_form_validates_again_after_the_next_action() -> None:
    """Rasa's ``set_latest_action``: the action run after ``LoopInterrupted(True)`` (the form
    itself, here) ends the interruption, so the form rejects a message it cannot use."""
    conv = Conversation(
        "c",
        NO_VALIDATOR,
        [
            ev.active_loop("restaurant_form"),
            ev.loop_interrupted(True),
            ev.action("restaurant_form"),
            ev.slot("requested_slot", "cuisine"),
            ev.action("action_listen"),
            user("greet"),
        ],
    )
    assert not conv.loop.is_interrupted
    assert conv.as_tracker()["active_loop"]["is_interrupted"] is False
    with pytest.raises(ActionRejected):
        await run_form("restaurant_form", conv)


# -- with a validation action, through the processor -------------------------------------------


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Agent:
    root = Path(tmp_path_factory.mktemp("restaurant"))
    files = {
        "domain.yml": DOMAIN,
        "data/rules.yml": RULES,
        "config.yml": RULES_ONLY,
        "actions/__init__.py": "",
        "actions/restaurant.py": ACTIONS,
    }
    return Agent(train_files(root, files), action_executor=InProcessExecutor(root, "actions"))


async def say(agent: Agent, sender: str, text: str) -> list[str]:
    return [m["text"] for m in await agent.handle_text(text, sender) if m.get("text")]


async def slots(agent: Agent, sender: str) -> dict[str, Any]:
    return Conversation(sender, agent.domain, (await agent.store.load(sender)).events).slots


async def test_the_value_given_with_the_starting_message_is_validated(agent: Agent) -> None:
    assert await say(agent, "thai", '/start_form{"cuisine": "thai"}') == ["How many people?"]
    assert (await slots(agent, "thai"))["cuisine"] == "Thai"
    assert await say(agent, "thai", '/inform{"number": 2}') == ["Booked Thai."]


async def test_a_value_given_with_the_starting_message_can_be_rejected(agent: Agent) -> None:
    said = await say(agent, "pizza", '/start_form{"cuisine": "pizza", "account": "gold"}')
    assert said == ["No pizza here.", "What cuisine?"]
    filled = await slots(agent, "pizza")
    assert filled["cuisine"] is None
    assert filled["membership"] == "gold" and filled["triggered"] is True


def test_of_several_entities_of_a_type_a_slot_takes_the_last() -> None:
    """Rasa's extraction: ``value[-1]`` where a message holds several values for a slot that is no
    list ("4 ... no, 5 people")."""
    parse = {
        "intent": {"name": "inform", "confidence": 1.0},
        "entities": [{"entity": "number", "value": 4}, {"entity": "number", "value": 5}],
    }
    conv = Conversation("c", NO_VALIDATOR, [ev.action("action_listen"), ev.user("4, no 5", parse)])
    assert slot_events(extract_slots(conv, NO_VALIDATOR)) == {"people": 5}


def test_a_forms_ignored_intents_fill_no_mapping_that_applies_to_it() -> None:
    """Rasa's ``intent_is_desired``: while a form is active, its ``ignored_intents`` are not
    intents of every mapping without conditions or with one naming the form, whatever slot."""
    domain = domain_of(
        DOMAIN.replace(
            "    required_slots: [cuisine, people]\n",
            "    required_slots: [cuisine]\n    ignored_intents: [inform]\n",
        )
    )
    conv = Conversation("c", domain)
    conv.extend([ev.active_loop("restaurant_form"), ev.slot("requested_slot", "cuisine")])
    conv.extend([ev.action("action_listen"), user("inform", number=4, account="gold")])
    assert slot_events(extract_slots(conv, domain)) == {}  # people is not one of the form's
    conv.extend([ev.action("action_listen"), user("greet", number=4, account="gold")])
    assert slot_events(extract_slots(conv, domain)) == {"people": 4, "membership": "gold"}
