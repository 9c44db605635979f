"""The default actions every domain has (Rasa's names and behaviour)."""

from __future__ import annotations

from chatbot.actions.base import Action, ActionContext, bot_event
from chatbot.actions.extract_slots import extract_slots
from chatbot.conversation import events as ev
from chatbot.conversation.events import Event
from chatbot.project import domain as d

# Used when the domain does not define these responses (Rasa ships the same defaults).
DEFAULT_RESPONSES = {
    "utter_restart": "Loading... And I've been restarted!",
    "utter_back": "Backing up...",
    "utter_default": "Sorry, I couldn't understand that. Could you rephrase?",
    "utter_ask_rephrase": "Sorry, I'm not sure I understand. Could you rephrase it?",
}


def utter_or_default(ctx: ActionContext, response: str) -> list[Event]:
    if response in ctx.domain.responses:
        return ctx.utter(response)
    return [bot_event({"text": DEFAULT_RESPONSES[response]}, response)]


class _Builtin(Action):
    name = ""


class ActionListen(_Builtin):
    name = d.ACTION_LISTEN

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


class ActionRestart(_Builtin):
    name = d.ACTION_RESTART

    async def run(self, ctx: ActionContext) -> list[Event]:
        events = ctx.utter("utter_restart") if "utter_restart" in ctx.domain.responses else []
        return [*events, ev.simple("restart")]


class ActionSessionStart(_Builtin):
    """Starts a new session: keeps the slots if the domain says so, then listens."""

    name = d.ACTION_SESSION_START

    async def run(self, ctx: ActionContext) -> list[Event]:
        carried: list[Event] = []
        if ctx.domain.session_config.carry_over_slots:
            initial = {n: s.initial_value for n, s in ctx.domain.slots.items()}
            carried = [
                ev.slot(name, value)
                for name, value in ctx.conversation.slots.items()
                if name != d.REQUESTED_SLOT and value is not None and value != initial.get(name)
            ]
        return [ev.simple("session_started"), *carried, ev.action(d.ACTION_LISTEN)]


class ActionDefaultFallback(_Builtin):
    name = d.ACTION_DEFAULT_FALLBACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*utter_or_default(ctx, "utter_default"), ev.simple("rewind")]


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
        intent = ctx.conversation.latest_intent or "that"
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
        return utter_or_default(ctx, "utter_ask_rephrase")


class ActionTwoStageFallback(_Builtin):
    name = d.ACTION_TWO_STAGE_FALLBACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*utter_or_default(ctx, "utter_ask_rephrase"), ev.simple("rewind")]


class ActionUnlikelyIntent(_Builtin):
    name = d.ACTION_UNLIKELY_INTENT

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


class ActionBack(_Builtin):
    name = d.ACTION_BACK

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*utter_or_default(ctx, "utter_back"), ev.simple("rewind"), ev.simple("rewind")]


class ActionSendText(_Builtin):
    name = d.ACTION_SEND_TEXT

    async def run(self, ctx: ActionContext) -> list[Event]:
        metadata = ctx.conversation.latest_message.get("metadata") or {}
        message = metadata.get("message") if isinstance(metadata, dict) else None
        return [bot_event(message, None)] if isinstance(message, dict) else []


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
