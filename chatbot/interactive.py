"""``chatbot interactive``: Rasa's interactive learning in the terminal.

You talk to the bot and confirm or correct each step: the intent the NLU read (and its
entities, written with Rasa's ``[value](entity)`` markup), then every action the policies
pick, until the bot listens again. The conversation runs on the served model and the real
actions (the project's action server or in-process actions), so slots, forms and the bot's
messages are what they would be. Corrections become training data: the conversation as a story
(what was confirmed, with the slots set and the forms run) and each typed message as an NLU
example of its confirmed intent and entities.

``export`` (at any question, and at the end) writes them to one new file in the project's
``data/`` folder, ``interactive_<time>.yml`` (``nlu:`` and ``stories:``, Rasa 3 YAML), rewritten
whole at each export of the session; the project's own files are never touched, and
``chatbot train`` reads the new file with the rest of ``data/``. ``undo`` takes back the last
message and what the bot did after it, ``restart`` starts the conversation over (the stories
so far are kept).

The intents and actions offered are the domain's, and two more: a new intent (its name) and a
new response (``utter_<name>`` and its text), which the rest of the session knows at once (the
policies, trained without them, see them as unknown until the next training). A new response
is exported with the rest, under ``responses:`` of the new file (a data file may hold
responses). A new intent belongs in the domain: with a ``domain/`` folder the export writes
``domain/interactive_<time>.yml``; with a ``domain.yml`` it asks first, then adds the intent
to its ``intents:`` list, every other line of the file as it was (a list it cannot add to
safely, written inline, say, is left alone and the intents go to
``interactive_<time>_domain.yml`` beside it, to be merged by hand).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatbot.agent import Agent
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.messages import UserMessage, terminal_lines
from chatbot.errors import ProjectError
from chatbot.project.domain import ACTION_LISTEN, Domain, Intent, ResponseVariation
from chatbot.project.domain_edit import add_intents
from chatbot.project.nlu_json import entity_json
from chatbot.project.nlu_reader import parse_annotated_text
from chatbot.project.nlu_writer import annotated_text, nlu_yaml
from chatbot.project.training_data import EntityAnnotation, NLUData, NLUExample
from chatbot.ranges import whole_number
from chatbot.server.story import applied, split_sessions, step_of

CHANNEL = "interactive"
STOP = ("/stop", "/exit", "/quit")
# The answers every question takes besides its own.
COMMANDS = {"u": "undo", "undo": "undo", "e": "export", "export": "export"}
COMMANDS |= {"r": "restart", "restart": "restart", "q": "quit", "quit": "quit"}
MENU = "[y]es, [n]o, [u]ndo, [r]estart, [e]xport, [q]uit"
NEW_INTENT = "(a new intent)"
NEW_RESPONSE = "(a new response)"
_NAME = re.compile(r"[A-Za-z0-9][\w\-]*\Z")

Ask = Callable[[str], Awaitable[str]]
Say = Callable[[str], None]


class _Command(Exception):
    """An answer that leaves the current question: undo, restart, quit (export is done on the
    spot and the question asked again)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class InteractiveSession:
    agent: Agent
    data_dir: Path
    ask: Ask
    say: Say
    sender_id: str = "interactive"
    examples: list[NLUExample] = field(default_factory=list)
    # Stories of conversations restarted during the session (their events, one list each).
    finished: list[list[dict[str, Any]]] = field(default_factory=list)
    started: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    exported: Path | None = None
    # The project's domain.yml, or its domain/ folder: where new intents are exported to.
    domain_path: Path | None = None
    # Intents and responses (name -> text) made during the session, in order.
    new_intents: list[str] = field(default_factory=list)
    new_responses: dict[str, str] = field(default_factory=dict)
    # New intents already written to the domain (or declined), not asked about again; those
    # written beside the domain (all of them rewritten each time).
    _intents_written: set[str] = field(default_factory=set)
    _intents_aside: list[str] = field(default_factory=list)
    # The conversation's events since its latest restart, as last loaded.
    _current_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def out_file(self) -> Path:
        return self.data_dir / f"interactive_{self.started}.yml"

    async def run(self) -> None:
        """Talk until ``/stop`` or quit; then offer to export what was confirmed."""
        self.say(
            "Interactive learning: confirm or correct each step. At any question: "
            f"{MENU}. Type /stop to finish."
        )
        try:
            while True:
                text = (await self.ask("Your input -> ")).strip()
                if text in STOP:
                    break
                if not text:
                    continue
                try:
                    await self._turn(text)
                except _Command as command:
                    if command.name == "quit":
                        break
                    await self._command(command.name)
        except EOFError:
            pass
        await self._conversation()
        if self._has_data() and await self._yes_at_the_end(
            f"Export the session to {self.out_file}?"
        ):
            await self.export()

    async def _turn(self, text: str) -> None:
        parse = await self.agent.parse(text)
        parse = await self._confirm_parse(text, parse)
        # The processor is asked for anew each time: a new intent or response serves another.
        await self.agent.processor.log_message(UserMessage(text, self.sender_id, CHANNEL), parse)
        if not text.startswith("/"):
            self.examples.append(_example(text, parse))
        while True:
            conversation = await self._conversation()
            if conversation.events and ev.is_action(conversation.events[-1], ACTION_LISTEN):
                return  # a failed action: the bot listens
            action, policy, confidence = await self._confirm_action(conversation)
            result = await self.agent.processor.execute(
                self.sender_id, action, policy=policy, confidence=confidence, channel=CHANNEL
            )
            for message in result.messages():
                self._show(message)
            if any(e.get("event") == "action_execution_rejected" for e in result.new_events):
                self.say(f"  ({action} rejected the turn: the policies predict again)")
            if action == ACTION_LISTEN:
                return

    async def _command(self, name: str) -> None:
        processor = self.agent.processor
        await self._conversation()
        if name == "undo":
            if not self._last_user_text():
                self.say("Nothing to undo.")
                return
            if self.examples and not self._last_user_text().startswith("/"):
                self.examples.pop()
            await processor.append_events(self.sender_id, [ev.simple("rewind")])
            self.say("The last message and what followed it are undone.")
        elif name == "restart":
            self.finished.append(list(self._current_events))
            await processor.append_events(self.sender_id, [ev.simple("restart")])
            self.say("The conversation starts over (its story so far is kept).")

    # -- the questions ---------------------------------------------------------------------------

    async def _confirm_parse(self, text: str, parse: dict[str, Any]) -> dict[str, Any]:
        intent = (parse.get("intent") or {}).get("name")
        confidence = float((parse.get("intent") or {}).get("confidence") or 0.0)
        if intent is None or not await self._yes(
            f"Is the intent '{intent}' ({confidence:.2f}) right for {text!r}?"
        ):
            intent = await self._choose_intent(parse)
            parse = {
                **parse,
                "intent": {"name": intent, "confidence": 1.0},
                "intent_ranking": [{"name": intent, "confidence": 1.0}],
            }
        if text.startswith("/") or not self.agent.domain.entities:
            return parse  # a payload's entities are what it says
        marked = annotated_text(_example(text, parse))
        if parse.get("entities") and await self._yes(f"Are the entities right? {marked}"):
            return parse
        if not parse.get("entities") and await self._yes(f"No entities in {text!r}: right?"):
            return parse
        kept = [
            e
            for e in parse.get("entities") or []
            if e.get("extractor") == "DucklingEntityExtractor"  # not the NLU model's to mark
        ]
        return {**parse, "entities": [*await self._mark_entities(text), *kept]}

    async def _choose_intent(self, parse: dict[str, Any]) -> str:
        ranked = [r.get("name") for r in parse.get("intent_ranking") or [] if isinstance(r, dict)]
        names = self.agent.domain.intent_names
        order = [n for n in ranked if n in names] + [n for n in names if n not in ranked]
        chosen = await self._choose("Which intent is it?", [*order, NEW_INTENT])
        if chosen != NEW_INTENT:
            return chosen
        name = await self._new_name("The new intent's name: ", names)
        self.new_intents.append(name)
        domain = self.agent.domain
        self._serve(dataclasses.replace(domain, intents={**domain.intents, name: Intent(name)}))
        return name

    async def _new_name(self, prompt: str, taken: Sequence[str], prefix: str = "") -> str:
        while True:
            name = (await self._ask(prompt)).strip()
            if not _NAME.match(name) or not name.startswith(prefix):
                wanted = f"start with {prefix} and " if prefix else ""
                self.say(f"  A name must {wanted}be letters, digits, _ or -; try again.")
            elif name in taken:
                self.say(f"  {name} is in the domain already; choose it from the list instead.")
            else:
                return name

    def _serve(self, domain: Domain) -> None:
        """Go on with ``domain`` (one more intent or response): the same model otherwise."""
        self.agent.replace_model(dataclasses.replace(self.agent.model, domain=domain))

    async def _mark_entities(self, text: str) -> list[dict[str, Any]]:
        known = set(self.agent.domain.entities)
        while True:
            raw = (
                await self._ask("Type it with its entities marked, e.g. [Berlin](city): ")
            ).strip()
            try:
                annotated = parse_annotated_text(raw)
            except ProjectError as error:
                self.say(f"  {error}")
                continue
            if annotated.text != text:
                self.say(f"  That is not the message ({text!r}) with markup; try again.")
                continue
            unknown = sorted({e.entity for e in annotated.entities} - known)
            if unknown:
                self.say(f"  Not entities of the domain: {', '.join(unknown)}; try again.")
                continue
            return [
                {**entity_json(e), "text": text[e.start : e.end], "extractor": "interactive"}
                for e in annotated.entities
            ]

    async def _confirm_action(self, conversation: Conversation) -> tuple[str, str, float]:
        if conversation.followup_action:
            predicted, policy, confidence = conversation.followup_action, "followup", 1.0
            scores: dict[str, float] = {predicted: 1.0}
        else:
            prediction, scores = self.agent.processor.scores(conversation)
            predicted, policy = prediction.action, prediction.policy
            confidence = float(prediction.confidence)
        if await self._yes(f"The bot wants to run '{predicted}' ({confidence:.2f}): right?"):
            return predicted, policy, confidence
        names = self.agent.domain.action_names
        order = sorted(names, key=lambda n: -scores.get(n, 0.0))
        chosen = await self._choose("Which action should the bot run?", [*order, NEW_RESPONSE])
        if chosen == NEW_RESPONSE:
            chosen = await self._new_name("The new response's name (utter_...): ", names, "utter_")
            text = ""
            while not text:
                text = (await self._ask("What should the bot say? ")).strip()
            self.new_responses[chosen] = text
            domain = self.agent.domain
            variation = ResponseVariation({"text": text})
            self._serve(
                dataclasses.replace(domain, responses={**domain.responses, chosen: (variation,)})
            )
        return chosen, "interactive", 1.0

    async def _yes_at_the_end(self, question: str) -> bool:
        try:
            answer = (await self.ask(f"{question} [y]es, [n]o ")).strip().lower()
        except EOFError:
            return True  # input ended: keep what was confirmed
        return answer in ("y", "yes", "")

    async def _yes(self, question: str) -> bool:
        while True:
            answer = (await self._ask(f"{question} ({MENU}) ")).strip().lower()
            if answer in ("y", "yes", ""):
                return True
            if answer in ("n", "no"):
                return False
            self.say("  Answer y or n (or u, r, e, q).")

    async def _choose(self, question: str, options: Sequence[str]) -> str:
        self.say(question)
        for shown, option in enumerate(options, start=1):
            self.say(f"  {shown}: {option}")
        while True:
            answer = (await self._ask("Number or name: ")).strip()
            number = whole_number(answer)
            if number is not None and 1 <= number <= len(options):
                return options[number - 1]
            if answer in options:
                return answer
            self.say(f"  Not one of the {len(options)} above; try again.")

    async def _ask(self, prompt: str) -> str:
        """A question's answer; the session's commands are handled here (export at once)."""
        while True:
            answer = await self.ask(prompt)
            command = COMMANDS.get(answer.strip().lower())
            if command is None:
                return answer
            if command == "export":
                await self._conversation()
                await self.export()
                continue
            raise _Command(command)

    # -- what is written -------------------------------------------------------------------------

    async def export(self) -> Path | None:
        """Write the session's stories and NLU examples to ``out_file`` (whole, each time)."""
        stories = self._stories()
        if not stories and not self.examples:
            self.say("Nothing to export yet.")
            return None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = nlu_yaml(NLUData(), examples=self.examples) if self.examples else 'version: "3.1"\n'
        if stories:
            text += yaml.safe_dump(
                {"stories": stories}, allow_unicode=True, sort_keys=False, width=100
            )
        if self.new_responses:
            responses = {name: [{"text": said}] for name, said in self.new_responses.items()}
            text += yaml.safe_dump(
                {"responses": responses}, allow_unicode=True, sort_keys=False, width=100
            )
        self.out_file.write_text(text, encoding="utf-8")
        self.exported = self.out_file
        made = f" (and {len(self.new_responses)} new responses)" if self.new_responses else ""
        self.say(
            f"Exported {len(stories)} stories and {len(self.examples)} NLU examples{made} to "
            f"{self.out_file}; `chatbot train` reads it with the rest of data/."
        )
        await self._export_intents()
        return self.out_file

    async def _export_intents(self) -> None:
        """The session's new intents into the domain (see the module's docstring)."""
        names = [n for n in self.new_intents if n not in self._intents_written]
        if not names:
            return
        self._intents_written.update(names)
        listed = ", ".join(names)
        path = self.domain_path
        if path is not None and path.is_dir():
            target = path / f"interactive_{self.started}.yml"
            every = {"version": "3.1", "intents": list(self.new_intents)}
            target.write_text(yaml.safe_dump(every, sort_keys=False))
            self.say(f"The new intents ({listed}) are in {target}.")
            return
        if (
            path is not None
            and path.is_file()
            and await self._agrees(
                f"Add the new intents ({listed}) to {path}? Nothing else in it changes."
            )
        ):
            if add_intents(path, names):
                self.say(f"Added {listed} to the intents of {path}.")
                return
            self.say(f"  {path}'s intents are not a list this can add to safely.")
        aside = (path.parent if path is not None else self.data_dir.parent) / (
            f"interactive_{self.started}_domain.yml"
        )
        self._intents_aside.extend(names)
        aside.write_text(yaml.safe_dump({"intents": self._intents_aside}, sort_keys=False))
        self.say(
            f"The new intents ({listed}) are in {aside}: add them to the domain's intents "
            "before training (stories and examples that use them need them there)."
        )

    async def _agrees(self, question: str) -> bool:
        """A yes-or-no question to change a file of the user's: no answer (input ended) is no."""
        try:
            answer = (await self.ask(f"{question} [y]es, [n]o ")).strip().lower()
        except EOFError:
            return False
        return answer in ("y", "yes")

    def _stories(self) -> list[dict[str, Any]]:
        runs = [*self.finished, self._current_events]
        stories: list[dict[str, Any]] = []
        for events in runs:
            for session in split_sessions(events):
                steps = [s for s in map(step_of, applied(session)) if s is not None]
                if any("intent" in s or "user" in s for s in steps):
                    number = len(stories) + 1
                    stories.append(
                        {"story": f"interactive {self.started} {number}", "steps": steps}
                    )
        return stories

    def _has_data(self) -> bool:
        return bool(self.examples or self._stories())

    async def _conversation(self) -> Conversation:
        stored = await self.agent.store.load(self.sender_id)
        conversation = Conversation(self.sender_id, self.agent.domain, stored.events)
        self._current_events = [
            e for e in conversation.events_after_latest_restart() if isinstance(e, dict)
        ]
        return conversation

    def _last_user_text(self) -> str:
        for event in reversed(self._current_events):
            if event.get("event") == "user":
                return str(event.get("text") or "")
        return ""

    def _show(self, message: dict[str, Any]) -> None:
        for number, line in enumerate(terminal_lines(message)):
            self.say(f"  bot: {line}" if number == 0 and message.get("text") else f"     {line}")


def _example(text: str, parse: dict[str, Any]) -> NLUExample:
    intent = str((parse.get("intent") or {}).get("name"))
    entities = []
    for e in parse.get("entities") or []:
        if e.get("extractor") == "DucklingEntityExtractor":
            continue  # the Duckling server's, not the NLU model's to learn
        start, end = e.get("start"), e.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end:
            continue  # an entity without a place in the text (a payload's) has no markup
        value = e.get("value")
        entities.append(
            EntityAnnotation(
                start=start,
                end=end,
                value=value if isinstance(value, str) else text[start:end],
                entity=str(e.get("entity")),
                role=e.get("role"),
                group=e.get("group"),
            )
        )
    return NLUExample(text, intent, tuple(entities))
