"""A generated Rasa 3.x project of a chosen size, for the large-project benchmark and its test.

Every size has the parts a grown assistant has: intents whose examples share words and carry
entities (one with the roles from/to), synonyms, regexes, lookup tables (one of thousands of
names), slots of every type, forms filled from text, rules, stories of 5-15 turns, responses
with conditions, a channel and buttons, and rasa-sdk actions run in-process. The config is
``chatbot init``'s (DIET and TED with ``epochs``). The same size and seed give the same files.

Each intent has a word of its own (``k12x``) among common ones, so a message made of that word
and a filler is one the NLU should read as the intent; ``GeneratedProject.probes`` are such
messages with the text their answer must hold, for checking answers at serving time.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

_SYLLABLES = "ka lo mi ra ten bor vi sa nu del mar quin zo fe gar hul ip jun ost pel rin sto"
_WORDS = """
book table order find show tell give cancel change update check pay send buy sell rent
flight hotel train car taxi room ticket pizza coffee account card balance transfer loan
weather news music movie song game recipe alarm timer reminder note email message call
please want need like would could can help me my the a for to from in on at with about
today tomorrow tonight morning evening next last this week month year now later soon
cheap expensive big small fast slow new old red blue green black white good bad best
"""
SYLLABLES, WORDS = _SYLLABLES.split(), _WORDS.split()
COLORS = ["red", "blue", "green", "black", "white", "yellow", "purple", "orange"]
SLOT_TYPES = ["text", "bool", "categorical", "float", "list", "any"]
FIXED_INTENTS = ["inform", "greet", "goodbye", "affirm", "deny"]
FILLERS = ["please", "now", "for me", "today"]


@dataclass(frozen=True)
class Size:
    intents: int  # besides the five of FIXED_INTENTS
    examples: tuple[int, int]  # NLU examples per intent, at least and at most
    forms: int
    slots: int
    responses: int
    actions: int
    stories: int
    rules: int  # about: two per form, one per rule-answered intent, greet and fallback
    lookup: int  # names in the lookup table of cities
    regexes: int
    synonyms: int


SIZES = {
    "XS": Size(10, (6, 10), 2, 12, 30, 4, 12, 8, 50, 3, 10),
    "S": Size(50, (20, 40), 20, 60, 400, 40, 400, 100, 10_000, 50, 500),
    "M": Size(200, (20, 100), 50, 150, 1_000, 100, 1_000, 250, 50_000, 50, 1_000),
    "L": Size(500, (20, 100), 100, 300, 2_000, 200, 2_000, 500, 100_000, 50, 2_000),
}


@dataclass(frozen=True)
class GeneratedProject:
    root: Path
    counts: dict[str, int]  # intents, examples, stories, rules, slots, forms, ...
    probes: list[tuple[str, str]]  # (a message, a text its answer holds)


def place_name(index: int) -> str:
    """A distinct made-up name for every index (its digits in base len(SYLLABLES))."""
    parts = [SYLLABLES[index % len(SYLLABLES)]]
    index //= len(SYLLABLES)
    while index:
        parts.append(SYLLABLES[index % len(SYLLABLES)])
        index //= len(SYLLABLES)
    return "".join(parts).capitalize()


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a YAML double-quoted scalar


class _Writer:
    """Writes one project; the random choices come from one seeded generator, in file order."""

    def __init__(self, root: Path, size: Size, epochs: int, seed: int) -> None:
        self.root, self.size, self.epochs = root, size, epochs
        self.rng = random.Random(seed)
        n_forms = size.forms
        n_rule = max(1, min(size.rules - 2 * n_forms - 2, (size.intents - n_forms) // 2))
        numbered = [f"intent_{i}" for i in range(size.intents)]
        self.form_intents = numbered[:n_forms]
        self.rule_intents = numbered[n_forms : n_forms + n_rule]
        self.story_intents = numbered[n_forms + n_rule :]
        self.intents = numbered + FIXED_INTENTS
        self.keywords = {
            name: [f"k{i}x", self.rng.choice(WORDS)] for i, name in enumerate(numbered)
        }
        self.keywords.update({name: [name] for name in FIXED_INTENTS})
        self.places = [place_name(i) for i in range(size.lookup)]
        self.products = [f"prod{self.rng.randrange(10**6):06d}" for _ in range(200)]
        self.entities = ["city", "product", "color", "amount", "zipcode"]
        self.entities += [f"ent_{k}" for k in range(15)]
        n_form_slots = max(6, size.slots // 3)
        self.form_slots = [f"fslot_{k}" for k in range(n_form_slots)]
        self.slot_types = {
            f"slot_{k}": SLOT_TYPES[k % len(SLOT_TYPES)] for k in range(size.slots - n_form_slots)
        }
        self.forms = {
            f"form_{f}": self.rng.sample(self.form_slots, self.rng.randint(3, 5))
            for f in range(n_forms)
        }
        self.actions = [f"action_custom_{k}" for k in range(size.actions)]
        # What the bot does after each story intent: its answer, every seventh a custom action.
        self.follow = {
            name: [
                f"utter_resp_{name}",
                *([self.actions[i % len(self.actions)]] if i % 7 == 0 else []),
            ]
            for i, name in enumerate(self.story_intents)
        }

    def write(self) -> GeneratedProject:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "actions").mkdir(exist_ok=True)
        examples = self.nlu()
        responses = self.domain()
        self.action_module()
        self.settings()
        rules = self.rules()
        stories = self.stories()
        counts = {
            "intents": len(self.intents),
            "examples": examples,
            "stories": stories,
            "rules": rules,
            "slots": len(self.form_slots) + len(self.slot_types),
            "forms": len(self.forms),
            "responses": responses,
            "actions": len(self.actions),
            "lookup_entries": len(self.places),
        }
        probes = [
            (f"{' '.join(self.keywords[name])} {filler}", f"for {name}.")
            for name in self.rule_intents + self.story_intents
            for filler in FILLERS
        ]
        return GeneratedProject(self.root, counts, probes)

    def sentence(self, name: str) -> str:
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 9))]
        for word in self.keywords[name]:
            words.insert(self.rng.randint(0, len(words)), word)
        return " ".join(words) + self.annotation()

    def annotation(self) -> str:
        """An entity for about a third of the examples, the cities with their roles."""
        rng, chance = self.rng, self.rng.random()
        if chance < 0.15:
            a, b = rng.sample(self.places[:5000], 2)
            return (
                f' from [{a}]{{"entity": "city", "role": "from"}}'
                f' to [{b}]{{"entity": "city", "role": "to"}}'
            )
        if chance < 0.22:
            return f" [{rng.choice(self.products)}](product)"
        if chance < 0.26:
            return f" in [{rng.choice(COLORS)}](color)"
        if chance < 0.29:
            return f" for [{rng.randint(2, 99)}](amount) people"
        if chance < 0.31:
            return f" at [{rng.randint(10000, 99999)}](zipcode)"
        if chance < 0.36:
            k = rng.randrange(15)
            return f" [val{k}_{rng.randrange(50)}](ent_{k})"
        return ""

    def nlu(self) -> int:
        lines = ['version: "3.1"', "nlu:"]
        count = 0
        for name in self.intents:
            lines += [f"- intent: {name}", "  examples: |"]
            seen: set[str] = set()
            for _ in range(self.rng.randint(*self.size.examples)):
                text = self.sentence(name)
                if text not in seen:
                    seen.add(text)
                    lines.append(f"    - {text}")
            count += len(seen)
        for k in range(self.size.synonyms):
            lines += [f"- synonym: syn_value_{k}", "  examples: |"]
            lines += [f"    - synalias{k}v{v}" for v in range(self.rng.randint(2, 3))]
        lines += ["- regex: zipcode", "  examples: |", "    - \\b[0-9]{5}\\b"]
        for k in range(1, self.size.regexes):
            lines += [f"- regex: pattern_{k}", "  examples: |", f"    - \\bR{k}[A-Z]{{2}}[0-9]+\\b"]
        lines += ["- lookup: city", "  examples: |", *(f"    - {p}" for p in self.places)]
        for k in range(4):
            lines += [f"- lookup: lookup_{k}", "  examples: |"]
            lines += [f"    - lk{k}item{j}" for j in range(min(200, self.size.lookup))]
        _write(self.root / "data" / "nlu.yml", lines)
        return count

    def slot_lines(self) -> list[str]:
        lines = ["slots:"]
        for slot in self.form_slots:
            lines += [f"  {slot}:", "    type: text", "    influence_conversation: false"]
            lines.append("    mappings:")
            for form in [f for f, slots in self.forms.items() if slot in slots] or ["form_0"]:
                lines += ["      - type: from_text", "        conditions:"]
                lines += [f"          - active_loop: {form}", f"            requested_slot: {slot}"]
        for k, (slot, kind) in enumerate(self.slot_types.items()):
            lines += [f"  {slot}:", f"    type: {kind}"]
            if kind == "categorical":
                lines += ["    values:", "      - low", "      - medium", "      - high"]
            elif kind == "float":
                lines += ["    min_value: 0", "    max_value: 100"]
            elif kind == "any":
                lines.append("    influence_conversation: false")
            lines.append("    mappings:")
            if kind == "bool":
                for intent, value in (("affirm", "true"), ("deny", "false")):
                    lines += ["      - type: from_intent", f"        intent: {intent}"]
                    lines.append(f"        value: {value}")
            elif kind == "categorical":
                lines.append("      - type: custom")
            else:
                entity = "amount" if kind == "float" else self.entities[k % len(self.entities)]
                lines += ["      - type: from_entity", f"        entity: {entity}"]
                if entity == "city":
                    lines.append(f"        role: {'from' if k % 2 else 'to'}")
        return lines

    def response_lines(self) -> tuple[list[str], int]:
        lines, names = ["responses:"], []
        for name in self.rule_intents + self.story_intents:
            names.append(f"utter_resp_{name}")
            lines.append(f"  utter_resp_{name}:")
            variants = self.rng.randint(1, 3)
            lines += [f"  - text: {_q(f'Answer {v} for {name}.')}" for v in range(variants)]
        for form, slots in self.forms.items():
            said = " ".join("{" + slot + "}" for slot in slots)
            names.append(f"utter_submit_{form}")
            lines += [f"  utter_submit_{form}:", f"  - text: {_q(f'Done with {form}: {said}')}"]
        for slot in self.form_slots:
            names.append(f"utter_ask_{slot}")
            lines += [f"  utter_ask_{slot}:", f"  - text: {_q(f'What is your {slot}?')}"]
        bools = [slot for slot, kind in self.slot_types.items() if kind == "bool"]
        k = 0
        while len(names) < self.size.responses - 2:
            names.append(f"utter_extra_{k}")
            flag = bools[k % len(bools)]
            lines += [f"  utter_extra_{k}:", f"  - text: {_q(f'Extra {k} when {flag} is set.')}"]
            lines += ["    condition:", "      - type: slot", f"        name: {flag}"]
            lines.append("        value: true")
            lines.append(f"  - text: {_q(f'Extra {k} otherwise, slot_0 is {{slot_0}}.')}")
            lines += [f"  - text: {_q(f'Extra {k} on REST.')}", "    channel: rest"]
            if k % 10 == 0:
                lines += ["    buttons:", "      - title: yes", "        payload: /affirm"]
                lines += ["      - title: no", "        payload: /deny"]
            k += 1
        lines += ["  utter_default:", "  - text: Sorry, I did not get that."]
        lines += ["  utter_greet:", "  - text: Hello!"]
        return lines, len(names) + 2

    def domain(self) -> int:
        lines = ['version: "3.1"', "intents:", *(f"  - {name}" for name in self.intents)]
        lines += ["entities:", "  - city:", "      roles:", "        - from", "        - to"]
        lines += [f"  - {entity}" for entity in self.entities[1:]]
        lines += self.slot_lines()
        responses, count = self.response_lines()
        lines += responses
        lines += ["actions:", *(f"  - {action}" for action in self.actions)]
        lines += [f"  - validate_{form}" for form in list(self.forms)[:5]]
        lines.append("forms:")
        for form, slots in self.forms.items():
            lines += [f"  {form}:", "    required_slots:", *(f"      - {s}" for s in slots)]
        lines += ["session_config:", "  session_expiration_time: 60"]
        lines.append("  carry_over_slots_to_new_session: true")
        _write(self.root / "domain.yml", lines)
        return count

    def action_module(self) -> None:
        """Custom actions that answer and set a categorical slot; form validations that keep
        what the user said."""
        lines = ["from rasa_sdk import Action, FormValidationAction"]
        lines += ["from rasa_sdk.events import SlotSet", "", ""]
        categorical = [slot for slot, kind in self.slot_types.items() if kind == "categorical"]
        for k, action in enumerate(self.actions):
            lines += [
                f"class Custom{k}(Action):",
                f"    def name(self):\n        return {action!r}\n",
                "    async def run(self, dispatcher, tracker, domain):",
                f"        dispatcher.utter_message(text='custom {k}')",
                f"        return [SlotSet({categorical[k % len(categorical)]!r}, 'medium')]\n\n",
            ]
        for form in list(self.forms)[:5]:
            lines += [f"class Validate{form.title().replace('_', '')}(FormValidationAction):"]
            lines += [f"    def name(self):\n        return 'validate_{form}'\n\n"]
        (self.root / "actions" / "__init__.py").write_text("")
        _write(self.root / "actions" / "actions.py", lines)

    def settings(self) -> None:
        config = f"""recipe: default.v1
language: en
assistant_id: large_project
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {self.epochs}
  - name: EntitySynonymMapper
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    max_history: 5
    epochs: {self.epochs}
"""
        (self.root / "config.yml").write_text(config)
        _write(self.root / "endpoints.yml", ["action_endpoint:", "  actions_module: actions"])
        _write(self.root / "credentials.yml", ["rest:"])

    def rules(self) -> int:
        lines = ['version: "3.1"', "rules:"]
        for f, (form, _) in enumerate(self.forms.items()):
            trigger = self.form_intents[f % len(self.form_intents)]
            lines += [f"- rule: activate {form}", "  steps:", f"  - intent: {trigger}"]
            lines += [f"  - action: {form}", f"  - active_loop: {form}"]
            lines += [f"- rule: submit {form}", "  condition:", f"  - active_loop: {form}"]
            lines += ["  steps:", f"  - action: {form}", "  - active_loop: null"]
            lines += ["  - slot_was_set:", "    - requested_slot: null"]
            lines.append(f"  - action: utter_submit_{form}")
        for name in self.rule_intents:
            lines += [f"- rule: answer {name}", "  steps:", f"  - intent: {name}"]
            lines.append(f"  - action: utter_resp_{name}")
        lines += ["- rule: greet", "  steps:", "  - intent: greet", "  - action: utter_greet"]
        lines += ["- rule: fallback", "  steps:", "  - intent: nlu_fallback"]
        lines.append("  - action: utter_default")
        _write(self.root / "data" / "rules.yml", lines)
        return 2 * len(self.forms) + len(self.rule_intents) + 2

    def stories(self) -> int:
        lines = ['version: "3.1"', "stories:"]
        for k in range(self.size.stories):
            lines += [f"- story: story {k}", "  steps:"]
            for _ in range(self.rng.randint(5, 15)):
                name = self.rng.choice(self.story_intents)
                lines.append(f"  - intent: {name}")
                lines += [f"  - action: {action}" for action in self.follow[name]]
        _write(self.root / "data" / "stories.yml", lines)
        return self.size.stories


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def generate(root: Path, size: str, *, epochs: int = 100, seed: int = 1234) -> GeneratedProject:
    """Write a project of ``size`` (a key of SIZES) into ``root``; ``epochs`` of DIET and TED."""
    return _Writer(root, SIZES[size], epochs, seed).write()
