"""Response actions: ``utter_x`` sends the domain response ``utter_x``; ``utter_faq`` sends the
response of the retrieval intent the NLU selected (``utter_faq/ask_name``)."""

from __future__ import annotations

import logging

from chatbot.actions.base import Action, ActionContext
from chatbot.conversation.events import Event

logger = logging.getLogger(__name__)


class ResponseAction(Action):
    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, ctx: ActionContext) -> list[Event]:
        events = ctx.utter(self.name)
        if not events:
            logger.warning("response %s has no variation that applies; nothing sent", self.name)
        return events


class RetrievalAction(Action):
    def __init__(self, name: str) -> None:
        self.name = name
        self.intent = name.removeprefix("utter_")

    async def run(self, ctx: ActionContext) -> list[Event]:
        selector = ctx.conversation.latest_message.get("response_selector") or {}
        chosen = (selector.get(self.intent) or selector.get("default") or {}).get("response") or {}
        key = chosen.get("intent_response_key")
        if not key:
            # The NLU did not select one: take the first key of this retrieval intent if the user's
            # intent is a full retrieval intent (``/faq/ask_name`` payloads).
            intent = ctx.conversation.latest_intent or ""
            key = intent if intent.startswith(self.intent + "/") else None
        if not key:
            logger.warning("retrieval action %s: no response selected", self.name)
            return []
        return ctx.utter(f"utter_{key}")
