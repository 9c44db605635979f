"""The form loop: a form is a goal (required slots) that the bot pursues until it is reached.

As in Rasa 3: on activation the form emits ``active_loop``, runs the slot extraction again with
itself active (slots whose mappings name the form, ``from_trigger_intent``) and has its slots that
hold a value validated; after each user message it takes the slot values extracted from the
message as candidates, has them validated (by ``validate_<form>`` when the domain declares it,
else accepted as they are), rejects itself when the user said nothing it can use (so the policies
can handle the digression), asks for the next missing slot (``requested_slot`` +
``utter_ask_<form>_<slot>`` / ``utter_ask_<slot>`` / ``action_ask_...``) and deactivates itself
when every required slot is filled.
"""

from __future__ import annotations

import logging
from typing import Any

from chatbot.actions.base import Action, ActionContext
from chatbot.actions.extract_slots import extract_slots, extracted_slots
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.errors import ActionRejected
from chatbot.project.domain import ACTION_LISTEN, REQUESTED_SLOT, Domain, Form

logger = logging.getLogger(__name__)


def ask_action_names(form: str, slot: str) -> tuple[str, ...]:
    return (
        f"action_ask_{form}_{slot}",
        f"action_ask_{slot}",
        f"utter_ask_{form}_{slot}",
        f"utter_ask_{slot}",
    )


def ask_action(domain: Domain, form: str, slot: str) -> str | None:
    for name in ask_action_names(form, slot):
        if name in domain.actions or name in domain.responses:
            return name
    return None


class FormAction(Action):
    def __init__(self, name: str) -> None:
        self.name = name

    def form(self, domain: Domain) -> Form:
        return domain.forms[self.name]

    async def run(self, ctx: ActionContext) -> list[Event]:
        conversation, domain = ctx.conversation, ctx.domain
        form = self.form(domain)
        events: list[Event] = []
        # Work on a copy so that every step sees the events emitted before it.
        scratch = conversation.fork()

        def emit(new: list[Event]) -> None:
            events.extend(new)
            scratch.extend(new)

        if scratch.active_loop_name != self.name:
            emit([ev.active_loop(self.name)])
            emit(await self._activate(ctx, scratch, form))
        elif (
            scratch.latest_action_name == ACTION_LISTEN
            and not scratch.loop.is_interrupted
            and not scratch.loop.rejected
        ):
            # Validate what the user just said.
            requested = self._requested(scratch, domain)
            candidates = self._candidates(scratch, form, requested)
            validation = await self._validate(ctx, scratch, candidates, requested=requested)
            filled = any(
                e.get("event") == "slot" and e.get("name") != REQUESTED_SLOT for e in validation
            )
            if requested is not None and not filled:
                raise ActionRejected(self.name, f"failed to extract slot {requested}")
            emit(validation)
        else:
            # Back after a digression (it rejected a message earlier, or another action ran):
            # nothing to validate, but the validation action may choose the slot to ask again.
            requested = self._requested(scratch, domain)
            emit(await self._validate(ctx, scratch, {}, requested=requested))
        next_slot = self._next_slot(scratch, form, events)
        if next_slot is None:
            emit([ev.active_loop(None), ev.slot(REQUESTED_SLOT, None)])
            return events
        emit([ev.slot(REQUESTED_SLOT, next_slot)])
        asker = ask_action(domain, self.name, next_slot)
        if asker is None:
            logger.error(
                "form %s has no response or action to ask for slot %s", self.name, next_slot
            )
        elif ctx.run_action is not None:
            emit(await ctx.run_action(asker, scratch))
        return events

    async def _activate(self, ctx: ActionContext, scratch: Conversation, form: Form) -> list[Event]:
        """The slot events of Rasa's ``FormAction.activate``, on a conversation where the form
        is active: the slot extraction runs again (a mapping whose conditions name the form, or
        a ``from_trigger_intent`` one, now applies to the message that activated it), then the
        validation action, where the domain has one, validates the form's slots that hold a
        value (none, maybe: it may still choose the first slot to ask, or fill some itself).
        Of the extraction, only the slot events that change a value are kept (Rasa sets the
        others again; it keeps no message either), and of those the validation action returns
        a slot too, its own."""
        if ctx.run_action is not None:
            found = await extracted_slots(scratch, ctx.domain, ctx.run_action)
        else:
            found = extract_slots(scratch, ctx.domain)
        extracted: list[Event] = []
        trial = scratch.fork()
        for event in found:
            if event.get("event") != "slot":
                continue  # a mapping action's message: said after the user's message already
            if trial.slots.get(event["name"]) != event.get("value"):
                extracted.append(event)
                trial.append(event)
        if not self._has_validator(ctx):
            return extracted
        prefilled = {
            s: trial.slots[s] for s in form.required_slots if trial.slots.get(s) is not None
        }
        validated = await self._validate(ctx, trial, prefilled, requested=None)
        named = {e["name"] for e in validated if e.get("event") == "slot"}
        return [*validated, *(e for e in extracted if e["name"] not in named)]

    def _requested(self, conversation: Conversation, domain: Domain) -> str | None:
        """The slot the form asked for, unless the domain no longer has it (a conversation
        stored mid-form, then the bot retrained without that slot): the form would reject
        every answer, so it asks for its next missing slot instead."""
        requested = conversation.slots.get(REQUESTED_SLOT)
        if requested is None or (isinstance(requested, str) and requested in domain.slots):
            return requested
        logger.warning(
            "conversation %s: form %s asked for slot %r, which the domain does not have; it "
            "asks for its next slot",
            conversation.sender_id,
            self.name,
            requested,
        )
        return None

    @staticmethod
    def _next_slot(conversation: Conversation, form: Form, events: list[Event]) -> str | None:
        """The slot to ask for next: the validation action's choice when it made one (rasa-sdk
        sets ``requested_slot`` when it changes ``required_slots``; None ends the form), else the
        first required slot without a value."""
        for event in reversed(events):
            if event.get("event") == "slot" and event.get("name") == REQUESTED_SLOT:
                value = event.get("value")
                return value if isinstance(value, str) else None
        return next((s for s in form.required_slots if conversation.slots.get(s) is None), None)

    @staticmethod
    def _candidates(
        conversation: Conversation, form: Form, requested: str | None
    ) -> dict[str, Any]:
        """Form slots set since the latest user message (by slot extraction): the domain's
        required slots and the one asked for, which a validation action's ``required_slots``
        may have added (Rasa's ``_add_dynamic_slots_requested_by_dynamic_forms``)."""
        wanted = {*form.required_slots, *([requested] if requested else [])}
        found: dict[str, Any] = {}
        for event in conversation.events_since_latest_user():
            if event.get("event") == "slot" and event.get("name") in wanted:
                found[event["name"]] = event.get("value")
        return found

    def _has_validator(self, ctx: ActionContext) -> bool:
        return f"validate_{self.name}" in ctx.domain.actions and ctx.run_action is not None

    async def _validate(
        self,
        ctx: ActionContext,
        scratch: Conversation,
        candidates: dict[str, Any],
        *,
        requested: str | None,
    ) -> list[Event]:
        """Slot events for the candidates: from ``validate_<form>`` when the domain declares it
        (it may also extract slots itself and change ``requested_slot``), else as they are.

        The validation action sees the conversation as Rasa's form shows it: the slot being
        asked for, the form's own action, then the candidates as the last events, which is where
        rasa-sdk's ``FormValidationAction`` looks for the slots to validate (``slots_to_validate``).
        """
        if not self._has_validator(ctx):
            return [ev.slot(name, value) for name, value in candidates.items()]
        assert ctx.run_action is not None
        temporary = scratch.fork()
        temporary.extend(
            [
                ev.slot(REQUESTED_SLOT, requested),
                ev.action(self.name),
                *(ev.slot(name, value) for name, value in candidates.items()),
            ]
        )
        return await ctx.run_action(f"validate_{self.name}", temporary)
