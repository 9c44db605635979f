"""Checks across a loaded project: does everything the data names exist in the domain?

``validate_project`` returns every problem it finds (``chatbot data validate`` prints them all):
stories, rules and test stories using unknown intents, actions, responses or forms; response
templates and conditions naming unknown slots; forms whose slots are unknown or cannot be asked
for; slot mappings naming unknown entities, intents, forms or actions. Each error names the file,
line, key and value, and what would be valid. What Rasa accepts with a warning is a warning here
(logged), and the project trains: NLU examples of intents or entities the domain lacks and one
text annotated with two intents (the NLU model learns them, the dialogue model does not see the
former), a story's entity or ``slot_was_set`` the domain lacks (training leaves the slot out),
categorical slot values no one declared, a retrieval intent ``faq/x`` of the NLU data without a
response ``utter_faq/x``, and such a response without examples of ``faq/x``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import (
    DEFAULT_ACTIONS,
    DEFAULT_INTENTS,
    DEFAULT_SLOTS,
    Domain,
    Origin,
    ResponseVariation,
)
from chatbot.project.project import Project
from chatbot.project.stories import (
    ANY_VALUE,
    ActionStep,
    ActiveLoopStep,
    CheckpointStep,
    OrStep,
    SlotStep,
    Step,
    Story,
    UserStep,
)
from chatbot.project.training_data import NLUData
from chatbot.project.yaml_io import close_matches_hint, scalar_text

logger = logging.getLogger(__name__)

# ``{name}`` in a response; ``{{`` and ``}}`` are escaped braces. JSON such as
# ``/inform{"city": "Paris"}`` in a button payload does not match (the name must be bare).
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)\}")
# The parts of a variation that Rasa fills with slot values.
_TEMPLATED_KEYS = ("text", "image", "custom", "buttons", "attachment", "quick_replies", "elements")


def validate_project(project: Project) -> list[ProjectError]:
    """Every semantic problem of ``project`` (its files have already been read without errors)."""
    checker = _Checker(project.domain)
    for story in (*project.stories, *project.rules, *project.test_stories, *project.test_rules):
        checker.story(story)
    checker.domain()
    checker.duckling = _duckling_dimensions(project)
    checker.nlu(project.nlu)
    for warning in checker.warnings:
        logger.warning("%s", warning)
    return checker.errors


def _duckling_dimensions(project: Project) -> set[str] | None:
    """The entities the pipeline's DucklingEntityExtractor may give: its ``dimensions``, every
    name (``ANY_DIMENSION``) without them, none without the component. Its settings' own
    mistakes are reported by the training's check of the config."""
    found: set[str] | None = None
    for component in project.config.pipeline:
        if component.name == "DucklingEntityExtractor":
            dimensions = component.params.get("dimensions")
            if isinstance(dimensions, str):
                dimensions = [dimensions]
            if isinstance(dimensions, list):
                found = {d for d in dimensions if isinstance(d, str)}
            else:
                found = {ANY_DIMENSION}
    return found


ANY_DIMENSION = "*"


class _Checker:
    # Set where the pipeline asks a Duckling server: the entities it may give.
    duckling: set[str] | None = None

    def __init__(self, domain: Domain) -> None:
        self.d = domain
        self.errors: list[ProjectError] = []
        # What Rasa accepts with a warning: NLU examples of intents and entities the domain lacks
        # (the NLU model learns them; the dialogue model does not see them).
        self.warnings: list[ProjectError] = []
        self._warn = False
        self.intents = set(domain.intent_names)
        self.slots = {*domain.slots, *DEFAULT_SLOTS}  # requested_slot, session_started_metadata
        self.retrieval = {name.split("/", 1)[0] for name in domain.responses if "/" in name}
        self.responses = set(domain.responses) | self.retrieval
        self.actions = set(domain.actions)
        self._placeholders: set[tuple[str, str]] = set()  # (response, name) warned about

    @contextlib.contextmanager
    def as_warnings(self) -> Iterator[None]:
        """``error`` calls within report warnings: what Rasa accepts with a warning."""
        self._warn = True
        try:
            yield
        finally:
            self._warn = False

    def error(
        self,
        message: str,
        origin: Origin,
        *,
        key: str | None,
        value: Any,
        candidates: Iterable[str] | None = None,
        what: str = "known names",
        hint: str | None = None,
    ) -> None:
        if hint is None and candidates is not None:
            hint = close_matches_hint(value, candidates, what)
        (self.warnings if self._warn else self.errors).append(
            ProjectError(
                message, file=origin.file, line=origin.line, key=key, value=value, hint=hint
            )
        )

    # --- names ----------------------------------------------------------------------------------

    def intent(self, name: str, origin: Origin, key: str = "intent", where: str = "") -> None:
        if name.split("/", 1)[0] not in self.intents:
            self.error(
                f"intent '{name}'{where} is not in the domain",
                origin,
                key=key,
                value=name,
                candidates=self.intents,
                what="intents in the domain",
            )

    def entity(self, name: str, origin: Origin, key: str = "entities", where: str = "") -> None:
        if name not in self.d.entities:
            self.error(
                f"entity '{name}'{where} is not in the domain",
                origin,
                key=key,
                value=name,
                candidates=self.d.entities,
                what="entities in the domain",
            )

    def slot(self, name: str, origin: Origin, key: str = "slot_was_set", where: str = "") -> bool:
        if name in self.slots:
            return True
        self.error(
            f"slot '{name}'{where} is not in the domain",
            origin,
            key=key,
            value=name,
            candidates=self.d.slots,
            what="slots in the domain",
        )
        return False

    def action(self, name: str, origin: Origin, key: str = "action") -> None:
        if name in DEFAULT_ACTIONS or name in self.d.forms:
            return
        if name.startswith("utter_"):
            # One the domain lists in ``actions`` without a response is an NLG server's:
            # ``domain()`` warns about it, as Rasa's check_missing_responses.
            if name not in self.responses and name not in self.actions:
                self.error(
                    f"response '{name}' is not in the domain",
                    origin,
                    key=key,
                    value=name,
                    candidates=self.responses,
                    what="responses in the domain",
                )
        elif name not in self.actions:
            self.error(
                f"action '{name}' is not in the domain's actions",
                origin,
                key=key,
                value=name,
                candidates=self.actions | set(self.d.forms),
                what="actions and forms in the domain",
            )

    def form(self, name: str | None, origin: Origin, key: str = "active_loop") -> None:
        if name is None or name in self.d.forms or name in DEFAULT_ACTIONS:
            return
        self.error(
            f"form '{name}' is not in the domain",
            origin,
            key=key,
            value=name,
            candidates=self.d.forms,
            what="forms in the domain",
        )

    # --- stories --------------------------------------------------------------------------------

    def story(self, story: Story) -> None:
        for step in (*story.conditions, *story.steps):
            self.step(step)

    def step(self, step: Step) -> None:
        if isinstance(step, UserStep):
            if step.intent is not None:
                self.intent(step.intent, step.origin)
            with self.as_warnings():  # as Rasa: the policies do not see it, training goes on
                for annotation in step.entities:
                    self.entity(annotation.entity, step.origin)
        elif isinstance(step, ActionStep):
            if step.name is not None:
                self.action(step.name, step.origin)
        elif isinstance(step, (SlotStep, CheckpointStep)):
            self.slot_values(step.slots, step.origin)
        elif isinstance(step, ActiveLoopStep):
            self.form(step.name, step.origin)
        elif isinstance(step, OrStep):
            for alternative in step.alternatives:
                self.step(alternative)

    def slot_values(self, slots: Iterable[tuple[str, Any]], origin: Origin) -> None:
        for name, value in slots:
            if name not in self.slots:
                # Rasa's story reader: "Tried to set non existent slot", a warning; training goes
                # on, and no state the policies see has the slot.
                with self.as_warnings():
                    self.error(
                        f"slot '{name}' is not in the domain; the story sets it to no effect",
                        origin,
                        key="slot_was_set",
                        value=name,
                        candidates=self.d.slots,
                        what="slots in the domain",
                    )
                continue
            slot = self.d.slots.get(name)
            if (
                slot is not None
                and slot.type in ("bool", "categorical", "float")
                and slot.influence_conversation
                and value == ANY_VALUE
            ):
                with self.as_warnings():  # as Rasa's story reader (its words)
                    self.error(
                        f"Slot '{name}' was referenced by its name only. As slot '{name}' is of "
                        f"type '{slot.type}' you need to specify a value for it. Slot '{name}' "
                        "will be treated as if it's value is empty",
                        origin,
                        key=name,
                        value=None,
                        hint="Give it a value (`- name: value`)",
                    )
                continue
            if slot is None or slot.type != "categorical" or value is None or value == ANY_VALUE:
                continue
            text = None if isinstance(value, (dict, list)) else scalar_text(value)
            if text != "__other__" and (text is None or text.lower() not in slot.values):
                with self.as_warnings():  # Rasa's featurizer: unseen values are __other__
                    self.error(
                        f"value {value!r} of categorical slot '{name}' is not one of its "
                        "values: it reads as '__other__', as in Rasa",
                        origin,
                        key=name,
                        value=value,
                        hint=f"Declared values: {', '.join(slot.values)}; add it to the slot's "
                        "'values' in the domain",
                    )

    # --- the domain -----------------------------------------------------------------------------

    def domain(self) -> None:
        for intent in self.d.intents.values():
            for entity in intent.used_entities or ():
                self.entity(
                    entity, intent.origin, "use_entities", f" used by intent '{intent.name}'"
                )
        for name in self.d.actions:
            if name.startswith("utter_") and name not in self.responses:
                origin = self._action_origin()
                with self.as_warnings():  # Rasa's validator warns (an NLG server may word it)
                    self.error(
                        f"action '{name}' is listed in actions but has no response: without "
                        "an NLG server (endpoints.yml nlg:) the bot says nothing for it",
                        origin,
                        key="actions",
                        value=name,
                        hint=f"Add a response '{name}' under 'responses:' or rename the action",
                    )
        for name, variations in self.d.responses.items():
            if not variations:
                with self.as_warnings():  # Rasa accepts it: an NLG server may word it
                    self.error(
                        f"response '{name}' has no variations: without an NLG server "
                        "(endpoints.yml nlg:) the bot says nothing for it",
                        self._action_origin(),
                        key=name,
                        value=None,
                        hint="Write e.g. '- text: \"Hello!\"' under it",
                    )
            for variation in variations:
                self.response(name, variation)
        for form in self.d.forms.values():
            self.form_slots(form.name, form.required_slots, form.origin)
            for ignored in form.ignored_intents:
                self.intent(
                    ignored, form.origin, "ignored_intents", f" ignored by form '{form.name}'"
                )
        for slot in self.d.slots.values():
            for mapping in slot.mappings:
                where = f" in a mapping of slot '{slot.name}'"
                origin = mapping.origin
                if mapping.entity is not None:
                    # Rasa warns when the mapping is used: it fills nothing.
                    with self.as_warnings():
                        self.entity(mapping.entity, origin, "entity", where)
                        # Rasa does not check these: the NLU gives the roles its data annotates.
                        self.entity_property(mapping.entity, "roles", mapping.role, origin)
                        self.entity_property(mapping.entity, "groups", mapping.group, origin)
                # Rasa warns too; the mapping applies to the other intents.
                with self.as_warnings():
                    for key in ("intent", "not_intent"):
                        for intent in getattr(mapping, key):
                            self.intent(intent, origin, key, where)
                if mapping.action is not None:
                    self.action(mapping.action, origin, "action")
                for condition in mapping.conditions:
                    self.form(condition.active_loop, origin, "active_loop")
                    if condition.requested_slot is not None:
                        self.slot(condition.requested_slot, origin, "requested_slot", where)

    def _action_origin(self) -> Origin:
        return Origin(self.d.files[0], None) if self.d.files else Origin()

    def entity_property(self, entity: str, kind: str, value: str | None, origin: Origin) -> None:
        declared = self.d.entities.get(entity)
        if value is None or declared is None or value in getattr(declared, kind):
            return
        self.error(
            f"{kind[:-1]} '{value}' is not declared for entity '{entity}'",
            origin,
            key=kind[:-1],
            value=value,
            candidates=getattr(declared, kind),
            what=f"{kind} of '{entity}'",
        )

    def response(self, name: str, variation: ResponseVariation) -> None:
        for key, text in _template_strings(variation.data):
            for match in _TEMPLATE.finditer(text.replace("{{", "").replace("}}", "")):
                slot = match.group(1)
                if slot in self.slots or (name, slot) in self._placeholders:
                    continue
                # A warning: a custom action may pass the value (rasa-sdk's
                # ``utter_message(response=name, slot=value)``), which Rasa does not check either.
                self._placeholders.add((name, slot))
                self.warnings.append(
                    ProjectError(
                        f"response '{name}' fills in '{{{slot}}}', which is not a slot: only an "
                        f"action that passes {slot}=... can fill it",
                        file=variation.origin.file,
                        line=variation.origin.line,
                        key=key,
                        value=slot,
                        hint=_typo_hint(slot, self.d.slots),
                    )
                )
        for condition in variation.conditions:
            self.slot(condition.name, variation.origin, "condition", f" in a condition of '{name}'")

    def form_slots(self, form: str, required: Iterable[str], origin: Origin) -> None:
        for slot in required:
            if not self.slot(slot, origin, "required_slots", f" required by form '{form}'"):
                continue
            asks = (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}")
            ask_actions = (f"action_ask_{form}_{slot}", f"action_ask_{slot}")
            if any(a in self.d.responses for a in asks) or any(
                a in self.actions for a in ask_actions
            ):
                continue
            with self.as_warnings():  # as Rasa: the form asks nothing, a custom action may
                self.error(
                    f"form '{form}' cannot ask for slot '{slot}'",
                    origin,
                    key="required_slots",
                    value=slot,
                    hint=f"Add a response '{asks[1]}' (or '{asks[0]}'), or an action "
                    f"'{ask_actions[1]}' (or '{ask_actions[0]}') to the domain",
                )

    def _noted(self, before: int) -> bool:
        """Whether a warning was added since ``before``; it then says what the name still does."""
        if len(self.warnings) == before:
            return False
        last = self.warnings[-1]
        self.warnings[-1] = dataclasses.replace(
            last,
            message=last.message + ": the NLU model learns it, stories and rules cannot use it",
        )
        return True

    # --- NLU data -------------------------------------------------------------------------------

    def nlu(self, nlu: NLUData) -> None:
        reported: set[tuple[str, str]] = set()
        first_intent: dict[str, tuple[str, Origin]] = {}
        for example in nlu.examples:
            with self.as_warnings():  # as in Rasa: a warning, and training goes on
                if ("intent", example.base_intent) not in reported:
                    before = len(self.warnings)
                    self.intent(example.intent, example.origin, "intent", " of an NLU example")
                    if self._noted(before):
                        reported.add(("intent", example.base_intent))
                for annotation in example.entities:
                    if ("entity", annotation.entity) not in reported:
                        before = len(self.warnings)
                        self.entity(
                            annotation.entity, example.origin, "examples", " of an NLU example"
                        )
                        if self._noted(before):
                            reported.add(("entity", annotation.entity))
            seen = first_intent.setdefault(example.text, (example.intent, example.origin))
            if seen[0] != example.intent:
                # As Rasa's validator: a warning, and the NLU learns both (Rasa's own
                # responseselectorbot has "good afternoon" as a greeting and a goodbye).
                where = f"{seen[1].file}:{seen[1].line}" if seen[1].line else str(seen[1].file)
                with self.as_warnings():
                    self.error(
                        f"the example {example.text!r} is annotated with two intents, "
                        f"'{seen[0]}' and '{example.intent}'",
                        example.origin,
                        key="intent",
                        value=example.intent,
                        hint=f"It is also an example of '{seen[0]}' at {where}; keep one",
                    )
        self._unextractable(nlu)
        self._without_examples(nlu)
        self._retrieval_responses(nlu)

    def _retrieval_responses(self, nlu: NLUData) -> None:
        """Warn about each retrieval intent ``x/y`` of the NLU data without a response
        ``utter_x/y``: the bot says nothing when the NLU selects it (Rasa warns of its examples
        when it trains: "You either need to add a response phrase or correct the intent"); and
        about each response ``utter_x/y`` no example has ``x/y`` of: the NLU never selects it.
        Each names its likely twin of the other kind (``utter_faq/ask_x`` beside ``faq/x``)."""
        if not nlu.examples:
            return  # a bot driven by /faq/ask_name payloads only
        first: dict[str, Origin] = {}
        for example in nlu.examples:
            if "/" in example.intent:
                first.setdefault(example.intent, example.origin)
        missing = {i: o for i, o in first.items() if f"utter_{i}" not in self.d.responses}
        orphans: dict[str, Origin] = {}  # x/y of each response utter_x/y that no example has
        for name, variations in self.d.responses.items():
            intent = name.removeprefix("utter_")
            if name.startswith("utter_") and "/" in intent and intent not in first:
                orphans[intent] = variations[0].origin if variations else self._action_origin()
        for intent, origin in missing.items():
            self.warnings.append(
                ProjectError(
                    f"retrieval intent '{intent}' has NLU examples but no response "
                    f"'utter_{intent}': without an NLG server (endpoints.yml nlg:) the bot says "
                    "nothing when the NLU selects it",
                    file=origin.file,
                    line=origin.line,
                    hint=_twin(intent, orphans, "utter_")
                    or f"Add a response 'utter_{intent}' (to the domain or to a data file's "
                    "'responses:')",
                )
            )
        for intent, origin in orphans.items():
            self.warnings.append(
                ProjectError(
                    f"response 'utter_{intent}' is a retrieval intent's, but no NLU example has "
                    f"intent '{intent}': the NLU never selects it (only a /{intent} payload does)",
                    file=origin.file,
                    line=origin.line,
                    hint=_twin(intent, missing),
                )
            )

    def _without_examples(self, nlu: NLUData) -> None:
        """Warn about each intent of the domain that no NLU example has, as Rasa's validator
        does: only a ``/intent`` payload or a button gives it."""
        if not nlu.examples:
            return  # a bot driven by /intent payloads only
        given = {example.base_intent for example in nlu.examples}
        for intent in self.d.intents.values():
            if intent.name in given or intent.name in DEFAULT_INTENTS or not intent.origin.file:
                continue
            self.warnings.append(
                ProjectError(
                    f"intent '{intent.name}' is in the domain, but no NLU example has it: only "
                    f"a /{intent.name} payload (a button, say), a reminder or the API's "
                    "trigger_intent gives it",
                    file=intent.origin.file,
                    line=intent.origin.line,
                )
            )

    def _unextractable(self, nlu: NLUData) -> None:
        """Warn where a slot fills from an entity the NLU cannot find: no example annotates it
        and no regex or lookup table is named after it (Rasa projects that relied on Duckling
        or spaCy's pretrained entities: formbot's ``number``, reminderbot's ``PERSON``)."""
        if not nlu.examples:
            return  # a bot driven by /intent payloads only
        found = {a.entity for example in nlu.examples for a in example.entities}
        found |= {r.name for r in nlu.regexes} | {t.name for t in nlu.lookups}
        warned: set[str] = set()
        for slot in self.d.slots.values():
            for mapping in slot.mappings:
                entity = mapping.entity
                if mapping.type != "from_entity" or not entity or entity in found | warned:
                    continue
                if self.duckling is not None and (
                    entity in self.duckling or ANY_DIMENSION in self.duckling
                ):
                    continue  # Duckling's (a number, a time, ...)
                if entity not in self.d.entities:
                    continue  # an error of its own
                warned.add(entity)
                origin = mapping.origin if mapping.origin.file else slot.origin
                self.warnings.append(
                    ProjectError(
                        f"slot '{slot.name}' fills from entity '{entity}', which no NLU example "
                        "annotates: the NLU model cannot extract it, only /intent{...} payloads "
                        "set it",
                        file=origin.file,
                        line=origin.line,
                        hint="Annotate it in some examples, add a regex or lookup table "
                        "named after it, or a DucklingEntityExtractor for Duckling's dimensions "
                        "(spaCy's pretrained entities are not served)",
                    )
                )


def _twin(intent: str, intents: Iterable[str], prefix: str = "") -> str | None:
    """``Did you mean 'x'?`` naming the one of ``intents`` (retrieval intents, ``faq/x``; with
    ``prefix``, as a response) of the same ``faq`` whose part after the ``/`` is close to
    ``intent``'s, else nothing (the shared ``faq/`` would make any two look alike)."""
    base, _, sub = intent.partition("/")
    subs = {name.partition("/")[2]: name for name in intents if name.startswith(base + "/")}
    close = difflib.get_close_matches(sub, list(subs), n=1, cutoff=0.6)
    return f"Did you mean '{prefix}{subs[close[0]]}'?" if close else None


def _typo_hint(name: str, slots: Iterable[str]) -> str | None:
    """``Did you mean 'x'?`` where a slot's name is close, else nothing."""
    hint = close_matches_hint(name, slots, "slots")
    return hint if hint.startswith("Did you mean") else None


def _template_strings(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(top-level key, string) for every string Rasa fills with slot values."""
    for key in _TEMPLATED_KEYS:
        if key in data:
            for text in _strings(data[key]):
                yield key, text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
