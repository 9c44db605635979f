"""The default actions every domain has (Rasa's names and behaviour)."""

from __future__ import annotations

import copy
from typing import Any

from chatbot.actions.base import Action, ActionContext, bot_event
from chatbot.actions.extract_slots import extract_slots
from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.project import domain as d


# Used when the domain does not define these responses (Rasa ships the same defaults).
async def utter_or_default(ctx: ActionContext, response: str) -> list[Event]:
    """The domain's ``response``, or nothing where the domain has none: as Rasa's default
    actions (``ActionBotResponse(..., silent_fail=True)``), which never answer in words of
    their own (an Italian bot without ``utter_default`` says nothing rather than English)."""
    if response in ctx.domain.responses:
        return await ctx.respond(response)
    return []


class _Builtin(Action):
    name = ""


class ActionListen(_Builtin):
    name = d.ACTION_LISTEN

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


class ActionRestart(_Builtin):
    name = d.ACTION_RESTART

    async def run(self, ctx: ActionContext) -> list[Event]:
        events = await utter_or_default(ctx, "utter_restart")
        return [*events, ev.simple("restart")]


class ActionSessionStart(_Builtin):
    """Starts a new session and listens. Where the domain carries slots over, the ``slot``
    events of the old session are replayed in the new one as they were (Rasa's
    ``_slot_set_events_from_tracker``): in order, ``None`` values, their metadata,
    ``requested_slot`` and ``session_started_metadata`` included."""

    name = d.ACTION_SESSION_START

    async def run(self, ctx: ActionContext) -> list[Event]:
        carried: list[Event] = []
        if ctx.domain.session_config.carry_over_slots:
            slots = ctx.conversation.slots  # a slot the domain lacks was never set: not carried
            carried = [
                _carried_slot(e)
                for e in ctx.conversation.applied_events()
                if e.get("event") == "slot" and e.get("name") in slots
            ]
        return [ev.simple("session_started"), *carried, ev.action(d.ACTION_LISTEN)]


def _carried_slot(event: Event) -> Event:
    carried = ev.slot(event["name"], event.get("value"))
    if event.get("metadata"):
        carried["metadata"] = copy.deepcopy(event["metadata"])
    return carried


class ActionDefaultFallback(_Builtin):
    name = d.ACTION_DEFAULT_FALLBACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*await utter_or_default(ctx, "utter_default"), ev.simple("rewind")]


class ActionDeactivateLoop(_Builtin):
    name = d.ACTION_DEACTIVATE_LOOP

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [ev.active_loop(None), ev.slot(d.REQUESTED_SLOT, None)]


class ActionRevertFallbackEvents(_Builtin):
    name = d.ACTION_REVERT_FALLBACK_EVENTS

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


class ActionDefaultAskAffirmation(_Builtin):
    name = d.ACTION_DEFAULT_ASK_AFFIRMATION

    async def run(self, ctx: ActionContext) -> list[Event]:
        intent = _intent_to_affirm(ctx.conversation.latest_message) or "that"
        message = {
            "text": f"Did you mean '{intent}'?",
            "buttons": [
                {"title": "Yes", "payload": f"/{intent}"},
                {"title": "No", "payload": "/out_of_scope"},
            ],
        }
        return [bot_event(message, self.name)]


class ActionDefaultAskRephrase(_Builtin):
    name = d.ACTION_DEFAULT_ASK_REPHRASE

    async def run(self, ctx: ActionContext) -> list[Event]:
        return await utter_or_default(ctx, "utter_ask_rephrase")


class ActionTwoStageFallback(_Builtin):
    """Rasa's two-stage fallback, a loop (a rule starts it on ``nlu_fallback``; RulePolicy runs it
    after every user message while it is active):

    1. it asks the user to affirm the most likely intent ("Did you mean 'X'?", Yes: ``/X``, No:
       ``/out_of_scope``); 2. denied, it asks to rephrase; 3. a rephrasing that is still unclear
       gets a second affirmation. As soon as the user's intent is clear (affirmed or rephrased),
       the conversation goes on as if the user had said that in the first place: the fallback's
       turns are rewound and the clear message takes the unclear one's place. A second denial, or
       an unclear answer to an affirmation, gives up: ``utter_default``, and the unclear message
       is rewound (``action_default_fallback``)."""

    name = d.ACTION_TWO_STAGE_FALLBACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        conversation = ctx.conversation
        if conversation.active_loop_name != self.name:
            return [ev.active_loop(self.name), *await self._affirm(ctx)]
        answers = _intents_since_activation(conversation.events, self.name)
        latest = answers[-1] if answers else d.INTENT_NLU_FALLBACK
        if latest not in (d.INTENT_NLU_FALLBACK, d.INTENT_OUT_OF_SCOPE):
            return [ev.active_loop(None), ev.simple("rewind"), *_clarified(conversation)]
        if latest == d.INTENT_OUT_OF_SCOPE and answers.count(d.INTENT_OUT_OF_SCOPE) < 2:
            return await utter_or_default(ctx, "utter_ask_rephrase")
        if latest == d.INTENT_NLU_FALLBACK and answers[-2:-1] == [d.INTENT_OUT_OF_SCOPE]:
            return await self._affirm(ctx)  # the rephrasing is unclear too: affirm once more
        return [ev.active_loop(None), *await ActionDefaultFallback().run(ctx)]

    @staticmethod
    async def _affirm(ctx: ActionContext) -> list[Event]:
        if ctx.run_action is not None:  # the registry's: a custom one where the bot has its own
            return await ctx.run_action(d.ACTION_DEFAULT_ASK_AFFIRMATION, ctx.conversation)
        return await ActionDefaultAskAffirmation().run(ctx)


def _intent_to_affirm(parse_data: dict[str, Any]) -> str | None:
    """The latest message's intent, or for ``nlu_fallback`` the best intent under it."""
    intent = (parse_data.get("intent") or {}).get("name")
    if intent == d.INTENT_NLU_FALLBACK:
        ranking = parse_data.get("intent_ranking") or []
        below = [r.get("name") for r in ranking if r.get("name") != d.INTENT_NLU_FALLBACK]
        return str(below[0]) if below and below[0] else None
    return str(intent) if intent else None


def _intents_since_activation(events: list[Event], loop: str) -> list[str]:
    """The intents of the user's messages since ``loop`` was last activated, oldest first."""
    activations = [
        i for i, e in enumerate(events) if e.get("event") == "active_loop" and e.get("name") == loop
    ]
    start = activations[-1] if activations else len(events)
    return [
        str((e.get("parse_data") or {}).get("intent", {}).get("name"))
        for e in events[start:]
        if e.get("event") == "user"
    ]


def _clarified(conversation: Any) -> list[Event]:
    """The clear message in place of the unclear one (Rasa's message clarification)."""
    latest = conversation.latest_user_event()
    if latest is None:
        return []
    clear = copy.deepcopy(latest)
    intent = (clear.get("parse_data") or {}).get("intent")
    if isinstance(intent, dict):
        intent["confidence"] = 1.0
    clear["timestamp"] = ev.now()
    return [ev.action(d.ACTION_LISTEN), clear]


class ActionUnlikelyIntent(_Builtin):
    name = d.ACTION_UNLIKELY_INTENT

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


class ActionBack(_Builtin):
    name = d.ACTION_BACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        back = await utter_or_default(ctx, "utter_back")
        return [*back, ev.simple("rewind"), ev.simple("rewind")]


class ActionSendText(_Builtin):
    """Rasa sends the message that the predicting policy puts in the action's metadata, or an
    empty text where there is none. No policy of ours gives action metadata, so this is always
    the empty text (a bot event Rasa's channels do not send). Never the user's message metadata,
    which would let whoever sends a message choose the bot's words."""

    name = d.ACTION_SEND_TEXT

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [bot_event({"text": ""}, None)]


class ActionExtractSlots(_Builtin):
    name = d.ACTION_EXTRACT_SLOTS

    async def run(self, ctx: ActionContext) -> list[Event]:
        return extract_slots(ctx.conversation, ctx.domain)


BUILTIN_ACTIONS: dict[str, type[_Builtin]] = {
    cls.name: cls
    for cls in (
        ActionListen,
        ActionRestart,
        ActionSessionStart,
        ActionDefaultFallback,
        ActionDeactivateLoop,
        ActionRevertFallbackEvents,
        ActionDefaultAskAffirmation,
        ActionDefaultAskRephrase,
        ActionTwoStageFallback,
        ActionUnlikelyIntent,
        ActionBack,
        ActionSendText,
        ActionExtractSlots,
    )
}
assert set(BUILTIN_ACTIONS) == set(d.DEFAULT_ACTIONS), set(d.DEFAULT_ACTIONS) ^ set(BUILTIN_ACTIONS)
