"""Rules that do not say what their actions set (Rasa's RulePolicy ``_check_for_incomplete_rules``).

A rule applies wherever the slots and the form it names match the conversation; a slot it does
not name matches any value. So where an action sets a slot (or starts or ends a form) in one rule,
another rule with the same action that does not name that slot after it applies whatever the
action set: the rule for "known user" and the rule written for "new user" both match a known
user, which their author rarely means. Rasa therefore takes each action's *fingerprint* from the
rules (the slots that influence the conversation and the forms that the rules set right after the
action, before the next action or user turn) and refuses to train where a rule, after that action,
names fewer of them ("Incomplete rules found"). We warn instead, as with the rules' contradictions:
the project still trains, and ``chatbot data validate --fail-on-warnings`` fails on them.

As in Rasa: only rules (not stories) give fingerprints and are checked; the slots and the form a
rule names anywhere before the action (its conditions included) count; the last action of a rule
with ``wait_for_user_input: false`` is not checked (what follows it is left open); and the check is
off where RulePolicy's ``check_for_contradictions`` is. ``long_rules``: Rasa's other check of the
rules, a rule with more than one user turn (``restrict_rules``), also a warning here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chatbot.project.domain import Origin
from chatbot.project.project import Project
from chatbot.project.stories import (
    ActionStep,
    ActiveLoopStep,
    OrStep,
    SlotStep,
    Step,
    Story,
    UserStep,
)
from training.dialogue import rule_policy_params
from training.story_events import action_name

MAX_LISTED = 20
_NO_FORM = "null"  # ``- active_loop: null``: the rule says no form is active


@dataclass
class _Fingerprint:
    """What the rules set right after one action: slots, and forms (``null`` for none)."""

    slots: dict[str, str] = field(default_factory=dict)  # slot -> the rule that sets it
    forms: dict[str, str] = field(default_factory=dict)  # form -> the rule that sets it


@dataclass(frozen=True)
class _After:
    """One action of a rule, and what the rule has named once it has run."""

    action: str
    origin: Origin
    slots: frozenset[str]
    form: str | None  # None: the rule names no form up to here
    checked: bool  # False: the rule's last action where it does not wait for the user


def incomplete_rules(project: Project, params: dict[str, object] | None = None) -> list[str]:
    """The rules' actions after which the rule names fewer slots or forms than the rules set
    after that action elsewhere, in words: at most ``MAX_LISTED``, then a count. None where the
    config has no RulePolicy or turns the check off. ``params``: RulePolicy's, where the caller
    has them."""
    params = rule_policy_params(project) if params is None else params
    if params is None or params.get("check_for_contradictions") is False:
        return []
    featurized = {
        name for name, slot in project.domain.slots.items() if slot.influence_conversation
    }
    walks = [(rule, list(_actions(rule, featurized))) for rule in project.rules]
    prints: dict[str, _Fingerprint] = defaultdict(_Fingerprint)
    for rule, afters in walks:
        for after, slots, forms in afters:
            fingerprint = prints[after.action]
            for slot in slots:
                fingerprint.slots.setdefault(slot, rule.where)
            for form in forms:
                fingerprint.forms.setdefault(form, rule.where)
    messages: list[str] = []
    for rule, afters in walks:
        for after, _, _ in afters:
            if after.checked:
                messages += _missing(rule, after, prints[after.action])
    if len(messages) > MAX_LISTED:
        more = len(messages) - MAX_LISTED
        messages = [
            *messages[:MAX_LISTED],
            f"... and {more} more incomplete rule step{'s' if more > 1 else ''}",
        ]
    return messages


def long_rules(project: Project, params: dict[str, object] | None = None) -> list[str]:
    """Rules with more than one user turn, in words (Rasa's ``restrict_rules``, on by default:
    "Rules are not meant to hardcode a state machine"; Rasa refuses to train on them). None
    where the config has no RulePolicy or sets ``restrict_rules: false``. We learn them as
    written: a warning."""
    params = rule_policy_params(project) if params is None else params
    if params is None or params.get("restrict_rules") is False:
        return []
    messages = []
    for rule in project.rules:
        turns = sum(1 for step in rule.steps if _is_user_turn(step))
        if turns > 1:
            messages.append(
                f"{rule.origin.prefix}rule '{rule.name}' has {turns} user turns: Rasa refuses "
                "rules with more than one ('Rules are not meant to hardcode a state machine'); "
                "write it as a story, or set 'restrict_rules: false' on RulePolicy"
            )
    return messages


def _slot_names(step: SlotStep | OrStep, featurized: set[str]) -> Iterable[str]:
    steps = step.alternatives if isinstance(step, OrStep) else (step,)
    for alternative in steps:
        if isinstance(alternative, SlotStep):
            yield from (name for name, _ in alternative.slots if name in featurized)


def _is_user_turn(step: Step) -> bool:
    if isinstance(step, OrStep):
        return any(isinstance(alternative, UserStep) for alternative in step.alternatives)
    return isinstance(step, UserStep)


def _actions(rule: Story, featurized: set[str]) -> Iterable[tuple[_After, set[str], set[str]]]:
    """Each action of ``rule``: what the rule names once it has run (up to the next action or
    user turn, conditions included), and the slots and forms the rule sets right after it
    (Rasa's ``_find_events_after_actions``)."""
    slots: set[str] = set()
    form: str | None = None
    for condition in rule.conditions:
        if isinstance(condition, SlotStep):
            slots.update(_slot_names(condition, featurized))
        elif isinstance(condition, ActiveLoopStep):
            form = condition.name or _NO_FORM
    last = max((i for i, step in enumerate(rule.steps) if isinstance(step, ActionStep)), default=-1)
    pending: tuple[int, ActionStep, set[str], set[str]] | None = None
    for index, step in enumerate((*rule.steps, None)):
        if step is None or isinstance(step, ActionStep) or _is_user_turn(step):
            if pending is not None:
                at, action, set_slots, set_forms = pending
                checked = at != last or rule.wait_for_user_input
                after = _After(action_name(action), action.origin, frozenset(slots), form, checked)
                yield after, set_slots, set_forms
                pending = None
            if isinstance(step, ActionStep):
                pending = (index, step, set(), set())
        elif isinstance(step, (SlotStep, OrStep)):
            names = set(_slot_names(step, featurized))
            slots |= names
            if pending is not None:
                pending[2].update(names)
        elif isinstance(step, ActiveLoopStep):
            form = step.name or _NO_FORM
            if pending is not None:
                pending[3].add(form)


def _missing(rule: Story, after: _After, fingerprint: _Fingerprint) -> Sequence[str]:
    where = f"{after.origin.prefix}rule '{rule.name}': after '{after.action}'"
    found: list[str] = []
    slots = sorted(set(fingerprint.slots) - after.slots)
    if slots:
        named = ", ".join(f"'{slot}' (as rule {fingerprint.slots[slot]})" for slot in slots)
        found.append(
            f"{where} it does not say the value of slot{'s' if len(slots) > 1 else ''} "
            f"{named} that the action sets in other rules, so it applies whatever the action "
            "set (Rasa refuses to train: 'Incomplete rules found'); add a 'slot_was_set' "
            "after the action (null where the slot is not set), or 'wait_for_user_input: "
            "false' where the action ends the rule"
        )
    forms = fingerprint.forms
    if forms and after.form not in forms:
        named = ", ".join(f"'{form}' (as rule {forms[form]})" for form in sorted(forms))
        found.append(
            f"{where} it does not say which form is active, which the action sets in other "
            f"rules: {named}; so it applies whatever the action did (Rasa refuses to train: "
            "'Incomplete rules found'); add an 'active_loop' after the action (null where no "
            "form is active), or 'wait_for_user_input: false' where the action ends the rule"
        )
    return found
