"""bAbI dialog tasks (Bordes et al. 2017) as bot projects made of framework objects.

A task's dialogs become end-to-end stories (``UserStep(text=...)``, no intents) whose bot turns are
template actions: knowledge-base values in a bot text become slot placeholders (``api_call
{cuisine} {location} {party_size} {price}``), entities come from lookup tables built from the
knowledge base, and the knowledge-base query and next result are in-process actions
(``chatbot.actions.knowledge_base``) whose slot events the stories hold. Task 6 (DSTC2) adds
synonyms, restaurant names spelled with spaces and, optionally, users who leave a slot open.
``training.benchmarks.babi`` trains and scores these projects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.actions.knowledge_base import (
    MATCHES_SLOT,
    MATCHES_VALUES,
    RESULTS_SLOT,
    KnowledgeBase,
    KnowledgeBaseCountAction,
    KnowledgeBaseNextAction,
    KnowledgeBaseQueryAction,
)
from chatbot.nlu.lookup_extractor import LookupEntityExtractor
from chatbot.project.domain import Domain, Entity, ResponseVariation, Slot, SlotMapping
from chatbot.project.stories import ActionStep, SlotStep, Story, UserStep
from chatbot.project.training_data import EntityAnnotation, LookupTable, NLUData
from training.babi_reader import SILENCE, Dialog

USER_SLOTS = ("cuisine", "location", "party_size", "price")
# "name": a restaurant's name as DSTC2's texts spell it: the id, or with spaces (``the cow pizza``).
TEMPLATE_SLOTS = (*USER_SLOTS, "restaurant", "name", "phone", "address", "post_code")
# What the offered restaurant itself has (``KnowledgeBase.describe``): a text that names it says
# its cuisine, area and price from these, also where the user left them open.
ITEM_SLOTS = tuple(f"restaurant_{s}" for s in USER_SLOTS)
# Words DSTC2 users say for the values the knowledge base holds, as a bot author would list them
# under ``synonym:`` in nlu.yml.
SYNONYMS = {"moderately": "moderate", "center": "centre", "central": "centre"}
# DSTC2's questions for a user slot (as a form's ``requested_slot``), and what users say to leave a
# slot open ("any", "dont care"), with the words that name the slot they leave open.
DSTC2_QUESTIONS = {
    "What part of town": "location",
    "What kind of food": "cuisine",
    "cheap , moderate , or expensive": "price",
}
DONTCARE = re.compile(r"\b(any|dont care|don'?t care|doesn'?t matter|does not matter|whatever)\b")
DONTCARE_NAMES = {"area": "location", "town": "location", "food": "cuisine", "price": "price"}
QUERY = "action_query_knowledge_base"
NEXT = "action_next_knowledge_base_result"
COUNT = "action_count_knowledge_base"


@dataclass
class BabiProject:
    """A task as framework objects, plus what converting more dialogs needs."""

    kb: KnowledgeBase
    user_table: dict[str, str]  # word -> user slot (lookup tables)
    templates: dict[str, str] = field(default_factory=dict)  # template -> action name
    synonyms: dict[str, str] = field(default_factory=dict)
    spaced: dict[str, str] = field(default_factory=dict)  # "the cow pizza" -> the_cow_pizza
    # Bot question -> the user slot it asks for; a user who then says "any" sets ``any_<slot>``.
    questions: dict[str, str] = field(default_factory=dict)
    # bAbI's protocol: every line is a user turn answered by one bot turn, ``<SILENCE>`` included
    # (the user said nothing: DSTC2's users often do). False: the bot speaks on without a turn.
    silence_turns: bool = True
    # An ``api_call`` sets the user slots to its own values (``api_call_belief``).
    belief_from_api_call: bool = False
    # A ``kb_matches`` slot (none / one / several items match the user's slots), set after every
    # user message by the count action of a ``custom`` slot mapping.
    count_matches: bool = False
    # Templates training says, by how many bot texts each could say (``learn_labels``).
    label_counts: dict[str, int] | None = None
    _counting: dict[str, int] | None = None
    _extractor: LookupEntityExtractor | None = None
    _spaced_order: list[str] = field(default_factory=list)

    def nlu_data(self) -> NLUData:
        """The lookup tables (one per user slot) and synonyms, as nlu.yml would give them."""
        tables: dict[str, list[str]] = {}
        for word, slot in sorted(self.user_table.items()):
            tables.setdefault(slot, []).append(word)
        lookups = [LookupTable(slot, tuple(words)) for slot, words in sorted(tables.items())]
        for variant, canonical in self.synonyms.items():
            table = self.user_table.get(canonical)
            if table is not None:
                lookups.append(LookupTable(table, (variant,)))
        return NLUData(synonyms=dict(self.synonyms), lookups=lookups)

    @property
    def extractor(self) -> LookupEntityExtractor:
        """The framework's lookup-table entity extractor (what a trained model parses with)."""
        if self._extractor is None:
            self._extractor = LookupEntityExtractor.from_nlu_data(self.nlu_data(), USER_SLOTS)
        return self._extractor

    def learn_values(self, dialogs: Sequence[Dialog]) -> int:
        """Add to the lookup tables the values that training dialogs' ``api_call``s use and the
        knowledge base lacks (DSTC2 users ask for cuisines no restaurant has); ``R_*`` means
        "any"; and how the training bot spells each restaurant (``_learn_spellings``). Returns
        how many words were added."""
        self._extractor = None
        added = 0
        for dialog in dialogs:
            for turn in dialog.turns:
                args = turn.bot.split()
                if len(args) < 4 or args[0] != "api_call":
                    continue
                names = USER_SLOTS if len(args) == 5 else ("cuisine", "location", "price")
                for name, value in zip(names, args[1:], strict=False):
                    if not value.startswith("R_") and value not in self.user_table:
                        self.user_table[value] = name
                        added += 1
        self._learn_spellings(dialogs)
        return added

    def _learn_spellings(self, dialogs: Sequence[Dialog]) -> None:
        """The ``name`` of each item whose id has underscores, as the training bot spells it:
        with spaces where its texts do (``the cow pizza kitchen and bar``: 3 of DSTC2's 89
        restaurants), else the id itself (``the_missing_sock``). One spelling per item keeps one
        template per text: with spaces for all, "The phone number of {name}" and "... of
        {restaurant}" were two templates the policy could not tell apart."""
        if not self.spaced:
            return
        said = "\n".join(f" {turn.bot} " for dialog in dialogs for turn in dialog.turns)
        for spelled, item in self.spaced.items():
            self.kb.items[item]["name"] = spelled if f" {spelled} " in said else item

    def action_for(self, text: str, slots: Mapping[str, Any]) -> str:
        """The template action of a bot text: each word that is the current value of a slot the
        bot knows (from the user's entities or the knowledge-base actions) becomes ``{slot}``."""
        padded = f" {text} "
        names_item = any(
            isinstance(slots.get(k), str) and f" {slots[k]} " in padded
            for k in ("restaurant", "name")
        )
        order = (*TEMPLATE_SLOTS, *ITEM_SLOTS) if names_item else TEMPLATE_SLOTS
        # Later slots win a value they share: the offered restaurant's own, in a text naming it.
        known = {
            tuple(v.split()): k for k in order if isinstance(v := slots.get(k), str) and v.strip()
        }
        longest = max(map(len, known), default=0)
        words, i = text.split(), 0
        out: list[str] = []
        spans: list[tuple[int, str]] = []  # (index in out, the words a placeholder stands for)
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):  # multi-word values first
                slot = known.get(tuple(words[i : i + n]))
                if slot is not None:
                    spans.append((len(out), " ".join(words[i : i + n])))
                    out.append("{" + slot + "}")
                    i += n
                    break
            else:
                out.append(words[i])
                i += 1
        template = self._label(out, spans)
        if template not in self.templates:
            # The name says the whole template: with ``action_name_words`` its words are features
            # of the next state, also for a template only a test dialog has.
            head = re.sub(r"\W+", "_", template).strip("_")[:120]
            self.templates[template] = f"utter_{len(self.templates):03d}_{head}"
        return self.templates[template]

    def _label(self, out: list[str], spans: list[tuple[int, str]]) -> str:
        """The template of a bot text: every slot value a placeholder (``out``), or, where
        ``learn_labels`` has counted the training texts, of the templates that say this text
        with these slots (each value a placeholder or written out) the one training says most
        often: "Would you like something in the cheap , moderate , or expensive price range?"
        stays one template when the price slot happens to hold "cheap"."""
        full = " ".join(out)
        if (self._counting is None and self.label_counts is None) or len(spans) > 8:
            return full
        variants = [full]  # first: a tie keeps every value a placeholder
        for mask in range(1, 2 ** len(spans)):
            words = list(out)
            for bit, (index, value) in enumerate(spans):
                if mask >> bit & 1:
                    words[index] = value
            variants.append(" ".join(words))
        if self._counting is not None:
            for variant in set(variants):
                self._counting[variant] = self._counting.get(variant, 0) + 1
            return full
        counts = self.label_counts or {}
        return max(variants, key=lambda v: counts.get(v, 0))

    def learn_labels(self, dialogs: Sequence[Dialog]) -> None:
        """Count, over ``dialogs`` (training's), how many bot texts each template could say; from
        then on ``action_for`` picks the most said one (``_label``)."""
        kept = dict(self.templates)
        self._counting = {}
        try:
            for dialog in dialogs:
                self.story(dialog, "count")
            self.label_counts = self._counting
        finally:
            self._counting = None
            self.templates = kept

    @staticmethod
    def api_call_belief(
        words: Sequence[str], slots: Mapping[str, Any]
    ) -> tuple[tuple[str, Any], ...]:
        """The user slots as the ``api_call`` says them (``R_*``: not constrained), where they
        differ from the slots. DSTC2's bot queries with what it understood, which is not always
        what the transcript says (it misheard, or left a value out): the query then runs with
        the bot's constraints, so its results hold the restaurant the bot offers next, and later
        texts that repeat a constraint ("Sorry there is no {cuisine} restaurant ...") are
        templates again. The api_call's own template is made before, from the user's slots."""
        if len(words) not in (4, 5):  # tasks 1-5: four values; DSTC2: three
            return ()
        names = USER_SLOTS if len(words) == 5 else ("cuisine", "location", "price")
        said = {
            n: (None if v.startswith("R_") else v) for n, v in zip(names, words[1:], strict=False)
        }
        return tuple((k, v) for k, v in said.items() if slots.get(k) != v)

    def asked(self, text: str) -> str | None:
        """The user slot a bot text asks for, if it is one of the ``questions``."""
        return next((slot for phrase, slot in self.questions.items() if phrase in text), None)

    def dontcare(
        self, text: str, asked: str | None, found: Mapping[str, str], slots: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Slot changes for a user who leaves a slot open ("any area", or "dont care" after the
        bot asked for one): ``any_<slot>`` is set and the slot's value cleared; a value given for
        a slot clears its ``any_<slot>``."""
        if not self.questions:
            return {}
        changes: dict[str, Any] = {f"any_{s}": None for s in found}
        if DONTCARE.search(text.lower()):
            named = {slot for word, slot in DONTCARE_NAMES.items() if word in text.lower()}
            for slot in named or ({asked} if asked else set()):
                if slot not in found:
                    changes.update({slot: None, f"any_{slot}": True})
        return {k: v for k, v in changes.items() if slots.get(k) != v}

    def offered(self, text: str) -> str | None:
        """The knowledge-base item a bot text names: as written (``resto_rome_cheap_thai_1stars``)
        or, in DSTC2's texts, with spaces for underscores (``the cow pizza kitchen and bar``)."""
        words = text.split()
        found = next((w for w in words if w in self.kb.items), None)
        if found is not None or not self.spaced:
            return found
        padded = f" {text} "
        return next((self.spaced[n] for n in self._by_length if f" {n} " in padded), None)

    @property
    def _by_length(self) -> list[str]:
        if len(self._spaced_order) != len(self.spaced):
            self._spaced_order = sorted(self.spaced, key=lambda n: (-len(n), n))
        return self._spaced_order

    def domain(self) -> Domain:
        slots = {
            **{
                s: Slot(s, "text", mappings=(SlotMapping("from_entity", entity=s),))
                for s in USER_SLOTS
            },
            "restaurant": Slot("restaurant", "text"),
            **{
                s: Slot(s, "any", influence_conversation=False)
                for s in ("name", "phone", "address", "post_code")
            },
            **{f"any_{s}": Slot(f"any_{s}", "bool") for s in sorted(set(self.questions.values()))},
            "rating": Slot("rating", "any", influence_conversation=False),
            **{s: Slot(s, "any", influence_conversation=False) for s in ITEM_SLOTS},
            RESULTS_SLOT: Slot(RESULTS_SLOT, "any", influence_conversation=False),
        }
        if self.count_matches:
            slots[MATCHES_SLOT] = Slot(
                MATCHES_SLOT,
                "categorical",
                values=MATCHES_VALUES,
                mappings=(SlotMapping("custom", action=COUNT),),
            )
        responses: dict[str, tuple[ResponseVariation, ...]] = {
            name: (ResponseVariation({"text": template}),)
            for template, name in self.templates.items()
        }
        return Domain(
            entities={e: Entity(e) for e in USER_SLOTS},
            slots=slots,
            responses=responses,
            actions=(QUERY, NEXT),
            store_entities_as_slots=False,
        )

    def story(self, dialog: Dialog, name: str) -> Story:
        """A dialog as an end-to-end story: user texts with lookup entities and their slots, the
        template action of each bot turn, and the knowledge-base actions with their slot events."""
        steps: list[Any] = []
        slots: dict[str, Any] = {}
        # The knowledge-base lines of a dialog are what its API returned (bAbI's protocol): the
        # query action reads them; without any it reads the whole knowledge base.
        kb = self.kb
        lines = [line for turn in dialog.turns for line in turn.kb_lines]
        if lines:
            kb = KnowledgeBase()
            for line in lines:
                item = kb.add_line(line)
                spelled = self.kb.items.get(item or "", {}).get("name")
                if item is not None and spelled is not None:
                    kb.items[item]["name"] = spelled
        query = KnowledgeBaseQueryAction(kb, USER_SLOTS)
        nxt = KnowledgeBaseNextAction(kb, USER_SLOTS)
        # The count asks the whole knowledge base (the bot's database), not the dialog's results.
        count = KnowledgeBaseCountAction(self.kb, USER_SLOTS)
        called = heard = False
        asked: str | None = None
        for turn in dialog.turns:
            if turn.kb_lines and not called:
                # Results given before any api_call (tasks 3 and 4): context, as slot events.
                changes = tuple((e["name"], e["value"]) for e in query.events({}))
                steps.append(SlotStep(changes))
                slots.update(changes)
            user = turn.user if turn.user is not None or not self.silence_turns else SILENCE
            if user is not None:
                entities = self.extractor.entities(user)
                steps.append(
                    UserStep(
                        text=user,
                        entities=tuple(
                            EntityAnnotation(e["start"], e["end"], e["value"], e["entity"])
                            for e in entities
                        ),
                    )
                )
                found: dict[str, Any] = {e["entity"]: e["value"] for e in entities}
                found.update(self.dontcare(user, asked, found, slots))
                if self.count_matches:
                    found.update((e["name"], e["value"]) for e in count.events({**slots, **found}))
                if found:
                    steps.append(SlotStep(tuple(found.items())))
                    slots.update(found)
            asked = self.asked(turn.bot)
            words = turn.bot.split()
            # Nothing is offered before the user has said anything: DSTC2's greeting ("You can
            # ask for restaurants ...") names no restaurant, though "ask" is one.
            heard |= turn.user is not None
            offered = self.offered(turn.bot) if heard or called else None
            if offered is not None and offered != slots.get("restaurant"):
                if RESULTS_SLOT not in slots:
                    steps.append(ActionStep(QUERY))
                    events = query.events(slots)
                else:
                    steps.append(ActionStep(NEXT))
                    events = nxt.events(slots)
                changes = tuple((e["name"], e["value"]) for e in events)
                steps.append(SlotStep(changes))
                slots.update(changes)
            if offered is not None and offered != slots.get("restaurant"):
                # The data offers another restaurant than the knowledge-base action chose (DSTC2
                # offers any match, not the best rated): the offer is a template with that name
                # written out (right only where training said the same); after it, the
                # conversation knows what was offered (the history says it), so the turns that
                # follow (its phone, its address) are templates again.
                steps.append(ActionStep(self.action_for(turn.bot, slots)))
                changes = tuple(self.kb.describe(offered, USER_SLOTS).items())
                steps.append(SlotStep(changes))
                slots.update(changes)
            else:
                steps.append(ActionStep(self.action_for(turn.bot, slots)))
            if words and words[0] == "api_call":
                called = True
                if self.belief_from_api_call:
                    belief = self.api_call_belief(words, slots)
                    if belief:
                        steps.append(SlotStep(belief))
                        slots.update(belief)
                steps.append(ActionStep(QUERY))
                changes = tuple((e["name"], e["value"]) for e in query.events(slots))
                steps.append(SlotStep(changes))
                slots.update(changes)
        return Story(name, "story", tuple(steps))


def make_babi(
    folder: Path,
    task: int = 1,
    *,
    dontcare: bool = False,
    api_belief: bool = True,
    count_matches: bool = True,
) -> BabiProject:
    """Tasks 1-5 share one knowledge base; task 6 (DSTC2) has its own. Task 6 options:
    ``dontcare`` tracks users who leave a slot open (``any_<slot>`` slots; it lowered dev
    accuracy, 56.9 -> 55.5, so it is off); ``api_belief``, an api_call sets the user slots to
    its own values (``api_call_belief``); ``count_matches``, a ``kb_matches`` slot after every
    user turn. The last two raised dev per-response by 2.2 points (three seeds), so they are
    on."""
    name = "dialog-babi-task6-dstc2-kb.txt" if task == 6 else "dialog-babi-kb-all.txt"
    kb = KnowledgeBase.from_babi(folder / name)
    user_table = kb.lookup_table(USER_SLOTS)
    if task != 6:
        return BabiProject(kb, user_table)
    spaced = {}
    for item, attributes in kb.items.items():
        # With spaces until ``learn_values`` learns which spelling the training texts use.
        attributes["name"] = item.replace("_", " ")
        if "_" in item:
            spaced[attributes["name"]] = item
    return BabiProject(
        kb,
        user_table,
        synonyms=dict(SYNONYMS),
        spaced=spaced,
        questions=dict(DSTC2_QUESTIONS) if dontcare else {},
        belief_from_api_call=api_belief,
        count_matches=count_matches,
    )
