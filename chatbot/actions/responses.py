"""Response actions: ``utter_x`` sends the response ``utter_x`` (the domain's, or an NLG server's
wording); ``utter_faq`` sends the response of the retrieval intent the NLU selected
(``utter_faq/ask_name``)."""

from __future__ import annotations

import logging

from chatbot.actions.base import Action, ActionContext, bot_event
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.project.domain import Domain

logger = logging.getLogger(__name__)


class ResponseAction(Action):
    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, ctx: ActionContext) -> list[Event]:
        events = await ctx.respond(self.name)
        if not events and ctx.nlg is None:  # an NLG server's silence is its own choice
            if self.name in ctx.domain.responses:
                logger.warning("response %s has no variation that applies; nothing sent", self.name)
            else:
                logger.warning(
                    "response %s is not in the domain and no NLG server (endpoints.yml nlg:) "
                    "words it; nothing sent",
                    self.name,
                )
        return events


class EndToEndResponse(Action):
    """A story's ``- bot: "text"`` turn (an end-to-end action, named by its text): it says its
    text, as Rasa's ActionEndToEndResponse."""

    def __init__(self, text: str) -> None:
        self.name = text

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [bot_event({"text": self.name})]


def is_retrieval_action(name: str, domain: Domain) -> bool:
    """Whether ``name`` is a retrieval intent's action (``utter_faq``, with ``utter_faq/...``
    responses in the domain and no response of its own)."""
    return (
        name.startswith("utter_")
        and name not in domain.responses
        and any(r.startswith(name + "/") for r in domain.responses)
    )


class RetrievalAction(Action):
    def __init__(self, name: str) -> None:
        self.name = name
        self.intent = name.removeprefix("utter_")

    async def run(self, ctx: ActionContext) -> list[Event]:
        response = self.full_name(ctx.conversation)
        if response is None:
            logger.warning("retrieval action %s: no response selected", self.name)
            return []
        return await ctx.respond(response)

    def full_name(self, conversation: Conversation) -> str | None:
        """The response this action sends in ``conversation`` now (``utter_faq/ask_name``), as
        Rasa's ``get_full_retrieval_name``: the NLU's selection for the latest message, or the
        user's intent where it is a full retrieval intent (``/faq/ask_name`` payloads, test
        stories). None when neither names one."""
        selector = conversation.latest_message.get("response_selector") or {}
        chosen = (selector.get(self.intent) or selector.get("default") or {}).get("response") or {}
        key = chosen.get("intent_response_key")
        if not key:
            intent = conversation.latest_intent or ""
            key = intent if intent.startswith(self.intent + "/") else None
        return f"utter_{key}" if key else None
