"""Fitting the dialogue policies of a project: rules, memorized stories (and the LSTM tracker).

``config.yml`` names the policies. Rasa's names are accepted: ``AugmentedMemoizationPolicy`` is
Rasa's (memoization that forgets the past where nothing matches), ``TEDPolicy``/``KerasPolicy``
are served by our LSTM policy, Rasa 2's ``FormPolicy`` and ``FallbackPolicy`` are covered by
RulePolicy (added where the config names none); each such stand-in is one notice line. An
unknown name is an error that lists the known ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import State, has_prior_events
from chatbot.dialogue.memoization import (
    AugmentedMemoizationPolicy,
    Key,
    MemoizationPolicy,
    memo_key,
)
from chatbot.dialogue.policy import Policy
from chatbot.dialogue.rules import Rule, RulePolicy
from chatbot.errors import ConfigError
from chatbot.nlu.custom import is_custom_name
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import ACTION_DEFAULT_FALLBACK, Domain
from chatbot.project.project import Project
from chatbot.project.stories import Step
from training.form_paths import rules_in_stories, unfold_form_paths
from training.removed_names import REMOVED_POLICIES, unknown_name_hint
from training.story_events import TrainingConversation, build
from training.story_graph import expand_or, resolve

logger = logging.getLogger(__name__)

# Rasa policy name -> (our policy, notice when it is a stand-in).
POLICY_NAMES: dict[str, tuple[str, str | None]] = {
    "RulePolicy": ("rules", None),
    "MemoizationPolicy": ("memo", None),
    "AugmentedMemoizationPolicy": ("memo", None),
    "LSTMPolicy": ("lstm", None),
    "TEDPolicy": ("lstm", "TEDPolicy: served by LSTMPolicy, our LSTM dialog-state tracker"),
    "KerasPolicy": ("lstm", "KerasPolicy: served by LSTMPolicy, our LSTM dialog-state tracker"),
    "UnexpecTEDIntentPolicy": (
        "ignore",
        "UnexpecTEDIntentPolicy: not used; no action_unlikely_intent is predicted",
    ),
    "FormPolicy": ("ignore", "FormPolicy: forms are run by RulePolicy"),
    "FallbackPolicy": ("ignore", "FallbackPolicy: use RulePolicy's core_fallback_threshold"),
    "TwoStageFallbackPolicy": (
        "ignore",
        "TwoStageFallbackPolicy: use RulePolicy with action_two_stage_fallback",
    ),
    "MappingPolicy": ("ignore", "MappingPolicy: use rules instead"),
}
DEFAULT_POLICIES = (
    ComponentConfig("MemoizationPolicy"),
    ComponentConfig("RulePolicy"),
    ComponentConfig("LSTMPolicy"),
)


@dataclass
class DialogueData:
    stories: list[TrainingConversation] = field(default_factory=list)
    rules: list[TrainingConversation] = field(default_factory=list)
    # Copies of the stories with each form's folded turns spelled out (``training.form_paths``),
    # for the LSTM tracker: it learns to run a form again when the user gives what it asked for.
    form_paths: list[TrainingConversation] = field(default_factory=list)
    # The steps each story was built from (``stories[i]`` from ``story_steps[i]``): messages
    # about a story's step name its line.
    story_steps: list[tuple[Step, ...]] = field(default_factory=list)


def training_data(project: Project) -> DialogueData:
    domain = project.domain
    flats = resolve(project.stories)
    stories = [build(flat.name, flat.source, flat.steps, domain) for flat in flats]
    rules = [
        build(rule.name, rule, steps, domain, rule=True)
        for rule in project.rules
        for steps in expand_or(rule.steps, 1000)
    ]
    form_paths = unfold_form_paths(
        stories,
        domain,
        rules=rules,
        project_stories=[*project.stories, *project.rules],
        nlu=project.nlu,
    )
    form_paths += rules_in_stories([*stories, *form_paths], rules, domain)
    return DialogueData(stories, rules, form_paths, [flat.steps for flat in flats])


def fit_rules(
    rules: Sequence[TrainingConversation], domain: Domain, params: dict[str, Any]
) -> RulePolicy:
    found: list[Rule] = []
    for conv in rules:
        replay = Conversation(conv.name, domain)
        # The features the rule mentions, for each state in replay.states (kept aligned with it:
        # a form running again on its happy path folds states out of the history).
        mentioned_per_state: list[frozenset[str]] = []
        for event, target, mentioned in zip(conv.events, conv.targets, conv.mentioned, strict=True):
            if event.get("event") != "action":
                replay.append(event)
                continue
            assert mentioned is not None
            rerun = replay.is_loop_rerun(event["name"])
            if target and not rerun:
                history = [
                    _partial(state, seen)
                    for state, seen in zip(replay.states, mentioned_per_state, strict=True)
                ]
                history.append(_partial(replay.current_state(), mentioned))
                found.append(
                    Rule(tuple(history), event["name"], conv.source.conversation_start, conv.name)
                )
            replay.append(event)
            del mentioned_per_state[len(replay.states) :]
            if not rerun:
                mentioned_per_state.append(mentioned)
    unique = list(dict.fromkeys(found))
    return RulePolicy(
        unique,
        core_fallback_threshold=float(params.get("core_fallback_threshold", 0.3)),
        core_fallback_action_name=str(
            params.get("core_fallback_action_name", ACTION_DEFAULT_FALLBACK)
        ),
        enable_fallback_prediction=bool(params.get("enable_fallback_prediction", True)),
    )


def _partial(state: State, mentioned: frozenset[str]) -> State:
    return tuple((k, v) for k, v in state if k in mentioned)


def fit_memo(
    stories: Sequence[TrainingConversation],
    domain: Domain,
    params: dict[str, Any],
    *,
    augmented: bool = False,
) -> MemoizationPolicy:
    """MemoizationPolicy (``augmented``: Rasa's AugmentedMemoizationPolicy, which forgets the
    conversation's past a turn at a time where nothing matches; trained alike)."""
    max_history = int(params.get("max_history") or 5)
    lookup: dict[Key, str] = {}
    ambiguous: set[Key] = set()
    seen_full: dict[tuple[State, ...], tuple[str, str]] = {}
    for conv in stories:
        replay = Conversation(conv.name, domain)
        for event, target in zip(conv.events, conv.targets, strict=True):
            # A form running again on its happy path is RulePolicy's to predict, not a step.
            if (
                event.get("event") == "action"
                and target
                and not replay.is_loop_rerun(event["name"])
            ):
                action = event["name"]
                key = memo_key(replay.recent_states(max_history), max_history)
                if lookup.get(key, action) != action:
                    ambiguous.add(key)
                lookup.setdefault(key, action)
                full = tuple(replay.past_states())
                # Contradictions between the user's own stories (not the training's copies).
                earlier = (
                    seen_full.setdefault(full, (action, conv.name))
                    if not conv.generated
                    else (action, conv.name)
                )
                if earlier[0] != action and has_prior_events(full[-1]):
                    logger.warning(
                        "stories '%s' and '%s' contradict each other: the same conversation is "
                        "followed by '%s' in one and '%s' in the other",
                        earlier[1],
                        conv.name,
                        earlier[0],
                        action,
                    )
            replay.append(event)
    for key in ambiguous:
        del lookup[key]
    if augmented:
        return AugmentedMemoizationPolicy(lookup, max_history)
    return MemoizationPolicy(lookup, max_history)


# Rasa 2 policies whose work RulePolicy does in Rasa 3, and how their settings read there.
RULE_POLICY_STAND_INS: dict[str, dict[str, str]] = {
    "FormPolicy": {},
    "MappingPolicy": {},
    "FallbackPolicy": {
        "core_threshold": "core_fallback_threshold",
        "fallback_action_name": "core_fallback_action_name",
    },
    "TwoStageFallbackPolicy": {"core_threshold": "core_fallback_threshold"},
}


def policy_configs(
    configs: Sequence[ComponentConfig], *, notices: bool = True
) -> list[tuple[str, ComponentConfig]]:
    """(our policy kind, its config) for each configured policy; notices for stand-ins.

    A Rasa 2 config that names FormPolicy (or MappingPolicy, FallbackPolicy, ...) and not
    RulePolicy gets a RulePolicy, which does their work in Rasa 3 (forms run, fallback under
    the threshold): without one its forms would stop after their first question."""
    out: list[tuple[str, ComponentConfig]] = []
    stand_ins: list[ComponentConfig] = []
    for config in configs or DEFAULT_POLICIES:
        if is_custom_name(config.name):
            out.append(("custom", config))  # a project's Rasa policy class
            continue
        entry = POLICY_NAMES.get(config.name)
        if entry is None:
            hint = unknown_name_hint(
                config.name, REMOVED_POLICIES, list(POLICY_NAMES), "policy", "policies"
            )
            raise ConfigError(
                f"{config.origin.prefix}unknown policy '{config.name}' (key 'policies'); {hint}"
            )
        kind, notice = entry
        if notice and notices:
            logger.info("%s", notice)
        if kind != "ignore":
            out.append((kind, config))
        elif config.name in RULE_POLICY_STAND_INS:
            stand_ins.append(config)
    if stand_ins and not any(kind == "rules" for kind, _ in out):
        params = {
            ours: config.params[theirs]
            for config in stand_ins
            for theirs, ours in RULE_POLICY_STAND_INS[config.name].items()
            if config.params.get(theirs) is not None
        }
        first = stand_ins[0]
        if notices:
            logger.info(
                "%sRulePolicy added for %s: config.yml names no RulePolicy, which does %s "
                "work in Rasa 3",
                first.origin.prefix,
                ", ".join(config.name for config in stand_ins),
                "their" if len(stand_ins) > 1 else "its",
            )
        out.append(("rules", ComponentConfig("RulePolicy", params, first.origin)))
    return out


def rule_policy_params(project: Project) -> dict[str, Any] | None:
    """RulePolicy's settings in the project's config; None where it has no RulePolicy."""
    configs = policy_configs(project.config.policies, notices=False)
    return next((config.params for kind, config in configs if kind == "rules"), None)


def check_rule_policy(project: Project) -> None:
    """Rasa's checks of the policies against the data (its DefaultV1RecipeValidator), as
    warnings: without RulePolicy, forms run only where the LSTM policy learned to run them
    (Rasa refuses such a config), rules in the data are not learned, and ``/restart`` does
    nothing."""
    configs = project.config.policies
    if any(kind == "rules" for kind, _ in policy_configs(configs, notices=False)):
        return
    where = configs[0].origin.prefix if configs else ""
    if project.domain.forms:
        logger.warning(
            "%sthe domain has forms (%s) but 'policies' has no RulePolicy, which runs them: "
            "only the LSTM policy runs a form, as far as the stories taught it (Rasa refuses "
            "this config); add '- name: RulePolicy' to the policies",
            where,
            ", ".join(sorted(project.domain.forms)),
        )
    if project.rules:
        logger.warning(
            "%sthe data has %d rules (the first: %s) but 'policies' has no RulePolicy: they "
            "are not learned; add '- name: RulePolicy' to the policies",
            where,
            len(project.rules),
            project.rules[0].where,
        )
    logger.warning(
        "%s'policies' has no RulePolicy: the intents 'restart' and 'back' will not run "
        "'action_restart' and 'action_back'",
        where,
    )


# A policy parameter's kind and allowed range (inclusive), and how an error says it.
ParamRule = tuple[type, float, float, str]
_THRESHOLD: ParamRule = (float, 0.0, 1.0, "a number between 0 and 1")
RULE_PARAMS: dict[str, ParamRule] = {
    "core_fallback_threshold": _THRESHOLD,
    "enable_fallback_prediction": (bool, 0, 1, "true or false"),
}
MEMO_PARAMS: dict[str, ParamRule] = {
    "max_history": (int, 1, float("inf"), "a whole number, at least 1"),
}


def check_params(config: ComponentConfig, ranges: dict[str, ParamRule]) -> None:
    """A policy parameter of the wrong kind or out of range is a ``ConfigError`` naming the
    file, line, key and value (``null`` keeps the default)."""
    for key, (kind, low, high, rule) in ranges.items():
        value = config.params.get(key)
        if value is None:
            continue
        if kind is bool:
            fits = isinstance(value, bool)
        elif kind is int:
            fits = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        else:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            fits = number and low <= value <= high
        if not fits:
            raise ConfigError(
                f"{config.origin.prefix}{config.name}: '{key}' must be {rule}, got {value!r}"
            )


def check_policy_params(kind: str, config: ComponentConfig) -> None:
    """The parameters of a RulePolicy or MemoizationPolicy entry (the LSTM policy's are
    ``training.lstm.settings_from_config``'s)."""
    if kind == "rules":
        check_params(config, RULE_PARAMS)
    elif kind == "memo":
        check_params(config, MEMO_PARAMS)
    elif kind == "custom":
        from chatbot.dialogue.custom_policy import policy_class
        from training.nlu.custom import folders_of

        policy_class(config.name, config.origin.prefix, folders_of(config))


def train_policies(
    project: Project, *, lstm_trainer: Any = None
) -> tuple[list[Policy], dict[str, Any]]:
    """The project's trained policies and the ensemble's settings."""
    check_rule_policy(project)
    data = training_data(project)
    policies: list[Policy] = []
    ensemble: dict[str, Any] = {
        "fallback_threshold": 0.3,
        "fallback_action": ACTION_DEFAULT_FALLBACK,
    }
    for index, (kind, config) in enumerate(policy_configs(project.config.policies)):
        if kind == "custom":
            from training.custom_policy import train_custom_policy

            policies.append(train_custom_policy(config, index, data, project.domain))
        elif kind == "rules":
            check_policy_params(kind, config)
            rules = fit_rules(data.rules, project.domain, config.params)
            from training.rule_conflicts import rule_conflicts

            dropped: list[Rule] = []
            for conflict in rule_conflicts(project, data, rules, config.params, dropped=dropped):
                logger.warning("%s", conflict)
            from training.incomplete_rules import incomplete_rules, long_rules

            for incomplete in incomplete_rules(project, config.params):
                logger.warning("%s", incomplete)
            for long_rule in long_rules(project, config.params):
                logger.warning("%s", long_rule)
            if dropped:
                # As Rasa's check deletes them: a story goes on there without the user.
                rules = rules.without(dropped)
            policies.append(rules)
            ensemble = {
                "fallback_threshold": rules.core_fallback_threshold,
                "fallback_action": rules.core_fallback_action_name,
            }
        elif kind == "memo":
            check_policy_params(kind, config)
            augmented = config.name == "AugmentedMemoizationPolicy"
            policies.append(
                fit_memo(data.stories, project.domain, config.params, augmented=augmented)
            )
        elif kind == "lstm":
            if lstm_trainer is None:
                logger.info(
                    "%s: the LSTM policy is not available in this build; skipped", config.name
                )
            elif _has_no_stories(data):
                logger.warning(
                    "%s: the project has rules and no stories, so it learns nothing (as Rasa's "
                    "TEDPolicy, which learns from stories only); the rules answer, and where "
                    "none applies, the fallback. Remove it from config.yml's policies to avoid "
                    "this message",
                    config.name,
                )
            else:
                policies.append(lstm_trainer(project, data, config))
    return policies, ensemble


def _has_no_stories(data: Any) -> bool:
    """Whether the project has rules and no story of its own: Rasa's TEDPolicy learns from
    stories only, so there it learns nothing and predicts nothing (the rules answer, and where
    none does, the fallback). Ours, which learns rules too, would guess from a few rules: a
    rules-only bot answered "hi" with its goodbye rule."""
    return bool(data.rules) and not any(not story.generated for story in data.stories)


def story_conflicts(
    project: Project, max_history: int | None, data: DialogueData | None = None
) -> list[str]:
    """Rasa's story structure check (``rasa data validate --max-history``): every history that
    two stories continue with different actions, naming both stories with their file and line.
    The LSTM policy learns only one of the two; memoization neither. (``data``: the project's
    ``training_data``, where the caller has it already.)"""
    from training.replay import conflict_message, conflicts, replay

    stories = (data or training_data(project)).stories
    where = {story.name: story.source.where for story in stories}
    steps = [replay(story, project.domain) for story in stories]
    return [
        conflict_message(
            (where.get(first[0], repr(first[0])), first[1]),
            (where.get(second[0], repr(second[0])), second[1]),
            step,
            max_history,
        )
        for first, second, step in conflicts(steps, max_history)
    ]


def smallest_max_history(project: Project) -> int | None:
    """The smallest ``max_history`` the config's policies read with, or None (the whole
    conversation), as the story structure check should use (Rasa's advice)."""
    found = [
        int(config.params["max_history"])
        for _, config in policy_configs(project.config.policies, notices=False)
        if isinstance(config.params.get("max_history"), int)
    ]
    return min(found) if found else None
