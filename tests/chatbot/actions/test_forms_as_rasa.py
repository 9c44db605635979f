"""A form's validation action and a custom action's FollowupAction, as Rasa 3 runs them (found
with Rasa's financial-demo): the form validates slots filled before it starts, and an action
that takes the user's message back and names the form as its follow-up resumes the form."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation.conversation import Conversation
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """
version: "3.1"
intents: [transfer, inform, show_recipients]
entities: [amount, recipient]
slots:
  recipient:
    type: text
    mappings: [{type: from_entity, entity: recipient}]
  amount:
    type: float
    mappings: [{type: from_entity, entity: amount}]
forms:
  transfer_form:
    required_slots: [recipient, amount]
actions: [validate_transfer_form, action_show_recipients]
responses:
  utter_ask_recipient:
    - text: Who gets the money?
  utter_ask_amount:
    - text: How much?
  utter_done:
    - text: "Sending {amount} to {recipient}."
"""

RULES = """
version: "3.1"
rules:
- rule: start a transfer
  steps:
  - intent: transfer
  - action: transfer_form
  - active_loop: transfer_form
- rule: send it
  condition:
  - active_loop: transfer_form
  steps:
  - action: transfer_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_done
- rule: who can get money, while transferring
  condition:
  - active_loop: transfer_form
  steps:
  - intent: show_recipients
  - action: action_show_recipients
"""

ACTIONS = """
from rasa_sdk import Action, FormValidationAction
from rasa_sdk.events import FollowupAction, UserUtteranceReverted


class ValidateTransferForm(FormValidationAction):
    def name(self):
        return "validate_transfer_form"

    def validate_recipient(self, value, dispatcher, tracker, domain):
        return {"recipient": str(value).title()}

    def validate_amount(self, value, dispatcher, tracker, domain):
        if float(value) > 1000:
            dispatcher.utter_message(text="At most 1000 at a time.")
            return {"amount": None}
        return {"amount": value}


class ShowRecipients(Action):
    def name(self):
        return "action_show_recipients"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="You can send money to Ann or Bob.")
        # financial-demo's way: the question was no answer to the form; the form goes on.
        return [UserUtteranceReverted(), FollowupAction("transfer_form")]
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Agent:
    root = Path(tmp_path_factory.mktemp("bank"))
    files = {
        "domain.yml": DOMAIN,
        "data/rules.yml": RULES,
        "config.yml": RULES_ONLY,
        "actions/__init__.py": "",
        "actions/bank.py": ACTIONS,
    }
    return Agent(train_files(root, files), action_executor=InProcessExecutor(root, "actions"))


async def say(agent: Agent, sender: str, text: str) -> list[str]:
    return [m["text"] for m in await agent.handle_text(text, sender) if m.get("text")]


async def slots(agent: Agent, sender: str) -> dict:
    return Conversation(sender, agent.domain, (await agent.store.load(sender)).events).slots


async def test_slots_filled_before_the_form_starts_are_validated_as_it_starts(
    agent: Agent,
) -> None:
    # Rasa's form has its validation action check them at activation (rasa-sdk finds them at
    # the end of the tracker's events); they were taken as given, 5000 included.
    replies = await say(agent, "pre", '/transfer{"recipient": "ann", "amount": 5000}')
    assert replies == ["At most 1000 at a time.", "How much?"]
    assert (await slots(agent, "pre"))["recipient"] == "Ann"
    assert await say(agent, "pre", '/inform{"amount": 20}') == ["Sending 20 to Ann."]


async def test_an_action_that_takes_the_message_back_and_names_the_form_resumes_it(
    agent: Agent,
) -> None:
    assert await say(agent, "digress", "/transfer") == ["Who gets the money?"]
    # The follow-up ran the form, which asks again (it was the bot's turn to speak); the bot
    # used to go silent until the user's next message.
    assert await say(agent, "digress", "/show_recipients") == [
        "You can send money to Ann or Bob.",
        "Who gets the money?",
    ]
    assert await say(agent, "digress", '/inform{"recipient": "bob"}') == ["How much?"]
    assert await say(agent, "digress", '/inform{"amount": 7}') == ["Sending 7 to Bob."]


DYNAMIC_DOMAIN = DOMAIN.replace(
    "forms:",
    """  note:
    type: text
    mappings:
    - type: from_text
      conditions: [{active_loop: transfer_form, requested_slot: note}]
forms:""",
).replace(
    "  utter_done:\n",
    "  utter_ask_note:\n    - text: Any note?\n  utter_done:\n",
)
DYNAMIC_ACTIONS = """
from rasa_sdk import FormValidationAction


class ValidateTransferForm(FormValidationAction):
    def name(self):
        return "validate_transfer_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain):
        return [*domain_slots, "note"]  # rasa-sdk's dynamic form: a slot the domain's lacks

    async def extract_note(self, dispatcher, tracker, domain):
        return {}  # its mapping in the domain fills it

    def validate_note(self, value, dispatcher, tracker, domain):
        return {"note": str(value).upper()}
"""


async def test_a_slot_the_validation_action_adds_to_the_form_is_filled_and_validated(
    tmp_path: Path,
) -> None:
    """Rasa's form takes the slot it asked for as one of its own, whether the domain's form
    lists it or the validation action's ``required_slots`` added it (a form that asked for
    such a slot rejected the answer and never finished)."""
    files = {
        "domain.yml": DYNAMIC_DOMAIN,
        "data/rules.yml": RULES.replace("- action: utter_done", "- action: utter_noted"),
        "config.yml": RULES_ONLY,
        "actions/__init__.py": "",
        "actions/bank.py": DYNAMIC_ACTIONS,
    }
    files["domain.yml"] += "  utter_noted:\n    - text: 'Noted for {recipient}: {note}'\n"
    agent = Agent(
        train_files(tmp_path, files), action_executor=InProcessExecutor(tmp_path, "actions")
    )
    assert await say(agent, "dyn", '/transfer{"recipient": "ann", "amount": 3}') == ["Any note?"]
    assert await say(agent, "dyn", "for lunch") == ["Noted for ann: FOR LUNCH"]
    assert (await slots(agent, "dyn"))["note"] == "FOR LUNCH"
