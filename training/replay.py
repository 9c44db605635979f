"""Training conversations replayed into the states the tracker sees, and the stories that
contradict each other there. No torch: ``chatbot data validate`` uses it without loading a
network library (``training.lstm_data`` turns the replayed states into tensors).

A training conversation (events + which actions are targets) is replayed through ``Conversation``
to get the state before every action exactly as at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import State, has_prior_events
from chatbot.project.domain import Domain
from training.story_events import TrainingConversation


@dataclass
class Steps:
    """One replayed conversation as the histories the tracker saw: each sequence is the state
    before each action in it, with the action to learn there (None: context, not a prediction).

    Usually one sequence. A form running again on its happy path is learned at the state before
    it, then folds the turns since its previous run out of the history
    (``Conversation.is_loop_rerun``, as Rasa does); what comes after is a new sequence that
    starts with the folded history, whose targets were learned in the sequence before.
    """

    name: str
    sequences: list[tuple[list[State], list[str | None]]]


def replay(conv: TrainingConversation, domain: Domain) -> Steps:
    conversation = Conversation(conv.name, domain)
    sequences: list[tuple[list[State], list[str | None]]] = []
    targets: list[str | None] = []
    fresh = False  # whether ``targets`` has a target no sequence holds yet
    for event, target in zip(conv.events, conv.targets, strict=True):
        if event.get("event") != "action":
            conversation.append(event)
            continue
        name = str(event["name"])
        if conversation.is_loop_rerun(name):
            # The form runs again on its happy path: learned here (the LSTM runs forms without
            # RulePolicy too), then its folded turns leave the history.
            if target:
                sequences.append(
                    ([*conversation.states, conversation.current_state()], [*targets, name])
                )
            elif fresh:
                sequences.append((list(conversation.states), list(targets)))
            fresh = False
            conversation.append(event)
            targets = [None] * len(conversation.states)
            continue
        targets.append(name if target else None)
        fresh = fresh or target
        conversation.append(event)
    if fresh:
        sequences.append((list(conversation.states), targets))
    for states, labels in sequences:
        assert len(states) == len(labels), (len(states), len(labels))
    return Steps(conv.name, sequences)


def _history(states: list[State], i: int, max_history: int | None) -> tuple[State, ...]:
    start = 0 if max_history is None else max(0, i + 1 - max_history)
    return tuple(states[start : i + 1])


def conflicts(
    stories: Sequence[Steps], max_history: int | None
) -> list[tuple[tuple[str, str], tuple[str, str], int]]:
    """Histories followed by different actions: ((story, action), (story, action), step)."""
    seen: dict[tuple[State, ...], tuple[str, str]] = {}
    found: list[tuple[tuple[str, str], tuple[str, str], int]] = []
    reported: set[tuple[tuple[State, ...], str]] = set()
    for steps in stories:
        for states, targets in steps.sequences:
            for i, action in enumerate(targets):
                if action is None:
                    continue
                if not has_prior_events(states[i]):
                    continue  # the bot speaks first: stories may start as they like
                key = _history(states, i, max_history)
                first = seen.setdefault(key, (steps.name, action))
                if first[1] != action and (key, action) not in reported:
                    reported.add((key, action))
                    found.append((first, (steps.name, action), i))
    return found


def conflict_message(
    first: tuple[str, str], second: tuple[str, str], step: int, max_history: int | None
) -> str:
    """One contradiction of ``conflicts`` in words (``first``/``second``: story, action)."""
    history = (
        "conversation"
        if max_history is None
        else f"last {max_history} state{'s' if max_history > 1 else ''}"
    )
    return (
        f"stories {first[0]} and {second[0]} contradict each other: after the same {history}, "
        f"one continues with '{first[1]}' and the other with '{second[1]}' (step {step + 1})"
    )
