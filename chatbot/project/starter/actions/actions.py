"""Custom actions: Python code the bot can run as a step of a conversation.

An action runs when a story or rule names it, like `- action: action_hello_world`.
To use the example below:
  1. list it in domain.yml under `actions:`,
  2. name it in a story or rule in data/,
  3. uncomment `action_endpoint` in endpoints.yml and start the action server:
       python -m rasa_sdk --actions actions
See https://rasa.com/docs/rasa-sdk/ for the full API (Tracker, dispatcher, events).
"""

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionHelloWorld(Action):
    """Says hello. The smallest possible custom action."""

    def name(self) -> str:
        # The name stories, rules and the domain use for this action.
        return "action_hello_world"

    def run(
        self,
        dispatcher: CollectingDispatcher,  # sends messages to the user
        tracker: Tracker,  # the conversation so far: slots, latest message, events
        domain: dict[str, Any],  # the bot's domain.yml, as a dict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="Hello World!")
        # Return events (e.g. SlotSet("name", "value")) to change the conversation.
        return []
