"""Stories and rules that the rules contradict (Rasa's RulePolicy ``check_for_contradictions``).

A rule outranks the other policies: where it predicts an action, that action runs. A story that
goes on with another action at that point is dead data, and its author is not told by anything
at run time. Rasa's RulePolicy therefore runs itself, once fitted, over every rule and story and
refuses to train where it predicts, at a step, another action than the one written there
("Contradicting rules or stories found"). We replay each rule and story through ``Conversation``
the same way, ask the fitted ``RulePolicy`` at each action the data gives, and warn instead: a
project Rasa refuses still trains, as with our other contradiction checks, and
``chatbot data validate --fail-on-warnings`` fails on them.

As in Rasa: an action right after the start of a rule (``...``) is context, not a prediction;
where the policy predicts nothing, nothing is contradicted; a form that is predicted where the
data goes on with something else is taken to have rejected (it does so at run time, and the
rules for the digression answer), and the policy is asked again; a rule that knows nothing of
forms and ends inside one gives the form its turn back, except where the data goes on otherwise
(Rasa learns "do not predict the form" there from that very data); and a rule that starts with
an action followed by a user turn does not contradict the story that goes on after that action
without one (the ``action_listen`` that such a rule predicts there is not what its author
meant; rasa#8176).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import PREV_ACTION
from chatbot.dialogue.rules import DEFAULT_INTENT_ACTIONS, Rule, RulePolicy
from chatbot.project.domain import ACTION_LISTEN, NO_ORIGIN, Origin
from chatbot.project.project import Project
from chatbot.project.stories import ActionStep, Step
from training.dialogue import DialogueData, fit_rules, rule_policy_params, training_data
from training.story_events import TrainingConversation, action_name

MAX_LISTED = 20


@dataclass(frozen=True)
class RuleConflict:
    """One step of a story or rule where the fitted rules predict another action."""

    step: Origin  # the step's line (for a listen the data implies, the action before it)
    where: str  # the story or rule: "story 'name' (file:line)"
    written: str  # the action the data gives at the step
    after: str | None  # the action before an implied listen, for the message
    predicted: str  # the action the rules predict there
    by: str  # who predicts it: "rule 'name' (file:line)", a built-in rule, a form

    @property
    def message(self) -> str:
        if self.written == ACTION_LISTEN and self.after is not None:
            does = f"waits for the user after '{self.after}'"
        else:
            does = f"runs '{self.written}'"
        if self.predicted != ACTION_LISTEN:
            instead = f"predicts '{self.predicted}' there"
        elif self.by.startswith("rule "):
            instead = (
                "waits for the user there (a rule ends by listening; 'wait_for_user_input: "
                "false' on the rule lets a story go on after it)"
            )
        else:
            instead = "waits for the user there"
        return (
            f"{self.step.prefix}{self.where} {does}, but {self.by} {instead}: that wins at run "
            f"time, so this step never happens (Rasa refuses to train: 'Contradicting rules or "
            f"stories found'); make the two agree"
        )


def rule_conflicts(
    project: Project,
    data: DialogueData | None = None,
    policy: RulePolicy | None = None,
    params: dict[str, Any] | None = None,
    *,
    dropped: list[Rule] | None = None,
) -> list[str]:
    """The steps of the project's stories and rules that its rules contradict, in words: at
    most ``MAX_LISTED``, then a count. None where the config has no RulePolicy or turns the
    check off (``check_for_contradictions: false``, as in Rasa). ``data``, ``policy`` and its
    ``params``: the training's, where the caller has them already. ``dropped`` receives the
    rules that Rasa's check deletes from its RulePolicy: the ``action_listen`` after a rule's
    leading action where a story goes on without the user (rasa#8176)."""
    params = rule_policy_params(project) if params is None else params
    if params is None or params.get("check_for_contradictions") is False:
        return []
    data = data if data is not None else training_data(project)
    if policy is None:
        policy = fit_rules(data.rules, project.domain, params)
    if not policy.rules:
        return []
    rule_where: dict[str, str] = {}
    for rule in project.rules:
        rule_where.setdefault(rule.name, rule.where)
    story_steps = data.story_steps
    if len(story_steps) != len(data.stories):
        # Data made otherwise: each story's own steps (they lack only those of the stories a
        # checkpoint joins to it, whose steps then go without a line).
        story_steps = [story.source.steps for story in data.stories]
    checked: list[tuple[TrainingConversation, Sequence[Step], str]] = [
        (story, steps, f"story {_where(story)}")
        for story, steps in zip(data.stories, story_steps, strict=True)
        if not story.generated
    ]
    checked += [(rule, rule.source.steps, f"rule {_where(rule)}") for rule in data.rules]
    found: dict[tuple[Origin, str, str, str, str], RuleConflict] = {}
    for conv, steps, where in checked:
        for conflict in _conflicts(conv, steps, where, policy, project, rule_where, dropped):
            # The same step reached by several paths (checkpoints, ``or``) is one conflict.
            known = conflict.step != NO_ORIGIN
            key = (
                conflict.step,
                "" if known else where,
                conflict.written,
                conflict.predicted,
                conflict.by,
            )
            found.setdefault(key, conflict)
    messages = [conflict.message for conflict in found.values()]
    if len(messages) > MAX_LISTED:
        more = len(messages) - MAX_LISTED
        messages = [
            *messages[:MAX_LISTED],
            f"... and {more} more step{'s' if more > 1 else ''} of stories or rules that the "
            "rules contradict",
        ]
    return messages


def _where(conv: TrainingConversation) -> str:
    """The story or rule by name and line (a path through checkpoints by its stories' names)."""
    return conv.source.where if conv.source.name == conv.name else repr(conv.name)


def _conflicts(
    conv: TrainingConversation,
    steps: Sequence[Step],
    where: str,
    policy: RulePolicy,
    project: Project,
    rule_where: dict[str, str],
    dropped: list[Rule] | None,
) -> Iterator[RuleConflict]:
    """Replays ``conv`` and asks ``policy`` before each action it must predict; the leading
    listens a story contradicts go to ``dropped``."""
    replay = Conversation(conv.name, project.domain)
    previous: tuple[str, Origin] | None = None
    for event, target, origin in zip(
        conv.events, conv.targets, _action_origins(conv, steps), strict=True
    ):
        if event.get("event") != "action":
            replay.append(event)
            continue
        written = str(event["name"])
        found = _prediction(policy, replay, written, rule_where) if target else None
        if found is not None and found[0] != written:
            predicted, by, rule = found
            # rasa#8176: the listen a rule predicts after its leading action is no contradiction
            # of a story (Rasa drops it from the rules, and so from the check).
            if conv.source.kind != "rule" and rule is not None and _leading_listen(rule, policy):
                if dropped is not None and rule not in dropped:
                    dropped.append(rule)
            else:
                # A listen the data implies is told by the action before it.
                before = previous if origin is None else None
                yield RuleConflict(
                    origin or (before[1] if before is not None else NO_ORIGIN),
                    where,
                    written,
                    before[0] if before is not None else None,
                    predicted,
                    by,
                )
        replay.append(event)
        if origin is not None:
            previous = (written, origin)


def _action_origins(conv: TrainingConversation, steps: Sequence[Step]) -> list[Origin | None]:
    """For each event of ``conv``: the line of the action step it comes from; None for other
    events and for the ``action_listen`` that the data implies (before a user turn, at the
    end)."""
    actions = iter([step for step in steps if isinstance(step, ActionStep)])
    pending = next(actions, None)
    origins: list[Origin | None] = []
    for event in conv.events:
        origin = None
        if (
            pending is not None
            and event.get("event") == "action"
            and event["name"] == action_name(pending)
        ):
            origin, pending = pending.origin, next(actions, None)
        origins.append(origin)
    return origins


def _prediction(
    policy: RulePolicy, replay: Conversation, written: str, rule_where: dict[str, str]
) -> tuple[str, str, Rule | None] | None:
    """(What ``policy`` predicts now, who predicts it, the rule if a rule does); None where
    it predicts nothing. A form predicted where the data goes on otherwise rejects first, as at
    run time (``replay`` keeps the rejection, as Rasa's check keeps it in its tracker)."""
    prediction = policy.predict(replay)
    loop = replay.loop
    if prediction is not None and prediction.action == loop.name and written != loop.name:
        replay.append(ev.action_rejected(loop.name))
        prediction = policy.predict(replay)
    if prediction is None:
        return None
    action = prediction.action
    prev, intent = replay.latest_action_name, replay.latest_intent
    if prev == ACTION_LISTEN and intent in DEFAULT_INTENT_ACTIONS:
        return action, f"the built-in rule for the intent '{intent}'", None
    if loop.name and not loop.rejected and prev in (ACTION_LISTEN, loop.name):
        return action, f"the active form '{loop.name}'", None
    rule = _matching_rule(policy, replay, action)
    if rule is None:  # a rule with the user's words (end-to-end)
        return action, "a rule", None
    if rule.action == ACTION_LISTEN and action == loop.name:
        # A rule that knows nothing of forms ended inside one, so the form resumes; data that
        # goes on otherwise there is, in Rasa, a "do not predict the loop" case learned from
        # that very data (its unhappy-path lookup): the rules predict nothing.
        return None
    return action, f"rule {rule_where.get(rule.source, repr(rule.source))}", rule


def _matching_rule(policy: RulePolicy, replay: Conversation, action: str) -> Rule | None:
    """The rule ``policy.predict`` took ``action`` from: the most specific one that matches
    (one that ends by listening, inside a form, gives the form back its turn)."""
    wanted = {action, ACTION_LISTEN} if action == replay.loop.name else {action}
    history = [dict(state) for state in replay.recent_states(policy.max_len)]
    for rule in policy.rules:
        if rule.action not in wanted:
            continue
        if rule.conversation_start and replay.num_states != len(rule.states):
            continue
        if rule.matches(history):
            return rule
    return None


def _leading_listen(rule: Rule, policy: RulePolicy) -> bool:
    """Whether ``rule`` is the ``action_listen`` after a rule's leading action (its states say
    nothing of an earlier action) that a longer rule goes on from (rasa#8176)."""
    if rule.action != ACTION_LISTEN:
        return False
    if sum(any(key == PREV_ACTION for key, _ in state) for state in rule.states) > 1:
        return False
    size = len(rule.states)
    return any(
        len(other.states) > size and other.states[:size] == rule.states for other in policy.rules
    )
