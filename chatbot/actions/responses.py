"""Response actions: ``utter_x`` sends the response ``utter_x`` (the domain's, or an NLG server's
wording); ``utter_faq`` sends the response of the retrieval intent the NLU selected
(``utter_faq/ask_name``)."""

from __future__ import annotations

import difflib
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
            _say_why_nothing_was_sent(ctx.domain, self.name)
        return events


def _say_why_nothing_was_sent(domain: Domain, response: str, by: str = "", hint: str = "") -> None:
    """A warning where ``response`` gave no message: the user hears nothing, and Rasa logs
    "Couldn't create message for response ..." there too."""
    if response in domain.responses:
        logger.warning("%sresponse %s has no variation that applies; nothing sent", by, response)
    else:
        logger.warning(
            "%sresponse %s is not in the domain and no NLG server (endpoints.yml nlg:) words it; "
            "nothing sent%s",
            by,
            response,
            hint,
        )


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
        events = await ctx.respond(response)
        if not events and ctx.nlg is None:
            # The NLU selected a sub-intent the responses do not name (``faq/travel_insurance``
            # beside ``utter_faq/ask_travel_insurance``): say which, and what is there.
            by = f"retrieval action {self.name}: "
            _say_why_nothing_was_sent(ctx.domain, response, by, f". {self._twin(ctx, response)}")
        return events

    def _twin(self, ctx: ActionContext, response: str) -> str:
        """The response of this action whose part after the ``/`` is close to ``response``'s
        (the shared ``utter_faq/`` would make any two look alike), else the list of them."""
        ours = {
            name.partition("/")[2]: name
            for name in sorted(ctx.domain.responses)
            if name.startswith(self.name + "/")
        }
        close = difflib.get_close_matches(response.partition("/")[2], list(ours), n=1)
        if close:
            return f"Did you mean '{ours[close[0]]}'?"
        names = list(ours.values())
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        return f"Responses of {self.intent}: {shown}"

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
