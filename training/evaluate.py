"""``chatbot test``: replay test stories turn by turn and compare every predicted action.

As ``rasa test core``: the conversation so far is the story's own events (a wrong prediction does
not derail the rest of the story); when the active form was predicted but the story continues
otherwise, the form is treated as having rejected the message and the prediction is made again.
Reports are Rasa's: ``story_report.json`` and ``failed_test_stories.yml`` with ``# predicted:``
comments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatbot.actions.responses import RetrievalAction, is_retrieval_action
from chatbot.agent import TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.nlu.intent_payload import parse_intent_payload
from chatbot.project.domain import ACTION_LISTEN
from chatbot.project.nlu_writer import annotated_message
from chatbot.project.stories import ActionStep, Step, Story
from training.nlu.evaluate import DEFAULT_REPORTS, ReportOptions
from training.reports import classification_report
from training.story_events import build
from training.story_graph import resolve


@dataclass
class StoryResult:
    name: str
    story: Story
    events: list[dict[str, Any]] = field(default_factory=list)
    # For each event: the predicted action if the event is an action to predict, else None.
    predictions: list[str | None] = field(default_factory=list)
    # End to end (``chatbot test``): for each user event with text that the NLU read otherwise
    # than the story, by event index, what it read (Rasa's "intent: text with [markup](e)").
    misread: dict[int, str] = field(default_factory=dict)
    # The story's end-to-end bot turns (``bot: "text"``): actions named by their text.
    bot_texts: frozenset[str] = frozenset()

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(gold action, predicted action) for every action the story predicts, in order."""
        return [
            (e["name"], p)
            for e, p in zip(self.events, self.predictions, strict=True)
            if p is not None
        ]

    @property
    def passed(self) -> bool:
        return not self.misread and all(g == p for g, p in self.pairs)


@dataclass
class StoryEvaluation:
    results: list[StoryResult]

    @property
    def gold(self) -> list[str]:
        return [g for r in self.results for g, _ in r.pairs]

    @property
    def predicted(self) -> list[str]:
        return [p for r in self.results for _, p in r.pairs]

    @property
    def action_accuracy(self) -> float:
        pairs = [p for r in self.results for p in r.pairs]
        return sum(g == p for g, p in pairs) / len(pairs) if pairs else 1.0

    @property
    def conversation_accuracy(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 1.0

    def report(self) -> dict[str, Any]:
        report = classification_report(self.gold, self.predicted)
        correct = sum(r.passed for r in self.results)
        report["conversation_accuracy"] = {
            "accuracy": self.conversation_accuracy,
            "correct": correct,
            "with_warnings": 0,
            "total": len(self.results),
        }
        return report


def predict_story(
    ensemble: PolicyEnsemble,
    model: TrainedModel,
    name: str,
    story: Story,
    steps: tuple[Step, ...],
    *,
    end_to_end: bool = False,
) -> StoryResult:
    conv = build(name, story, steps, model.domain)
    replay = Conversation(f"test-{name}", model.domain)
    texts = frozenset(str(s.text) for s in steps if isinstance(s, ActionStep) and s.name is None)
    result = StoryResult(name, story, conv.events, bot_texts=texts)
    for index, (event, target) in enumerate(zip(conv.events, conv.targets, strict=True)):
        if end_to_end and event.get("event") == "user":
            misread = _misread(model, event)
            if misread is not None:
                result.misread[index] = misread
        predicted: str | None = None
        if event.get("event") == "action" and target:
            gold = event["name"]
            predicted = ensemble.predict(replay).action
            loop = replay.active_loop_name
            if predicted != gold and loop is not None and predicted == loop:
                # The form would have rejected this message; let the policies decide again.
                replay.append(ev.action_rejected(loop))
                predicted = ensemble.predict(replay).action
            if is_retrieval_action(predicted, model.domain):
                # As Rasa: a retrieval action counts as the response it sends (test stories
                # name ``utter_faq/ask_name``, the policies predict ``utter_faq``).
                predicted = RetrievalAction(predicted).full_name(replay) or predicted
        result.predictions.append(predicted)
        replay.append(_as_run(event, model))
    return result


def _misread(model: TrainedModel, event: dict[str, Any]) -> str | None:
    """What the NLU reads in a story's user text where it differs from the story's intent or
    entities (entity and value; offsets aside); None where it agrees or there is no text."""
    text, gold = event.get("text"), ev.intent_name(event)
    if not isinstance(text, str) or gold is None or model.nlu is None:
        return None
    parsed = parse_intent_payload(text) or model.nlu.parse(text)
    intent = (parsed.get("intent") or {}).get("name")
    found = _entity_values(parsed.get("entities") or [])
    wanted = _entity_values((event.get("parse_data") or {}).get("entities") or [])
    if intent == gold and found == wanted:
        return None
    return f"{intent}: {annotated_message(text, parsed.get('entities') or [])}"


def _entity_values(entities: Sequence[Any]) -> set[tuple[str, str]]:
    return {
        (str(e.get("entity")), str(e.get("value")))
        for e in entities
        if isinstance(e, dict) and e.get("extractor") != "DucklingEntityExtractor"
    }


def _as_run(event: dict[str, Any], model: TrainedModel) -> dict[str, Any]:
    """The story's event as the bot runs it: a test story's ``utter_faq/ask_name`` is the
    retrieval action ``utter_faq`` (what the policies read as the previous action)."""
    name = event.get("name")
    if event.get("event") == "action" and isinstance(name, str) and "/" in name:
        action = name.split("/", 1)[0]
        if is_retrieval_action(action, model.domain):
            return {**event, "name": action}
    return event


def evaluate_stories(
    model: TrainedModel, stories: Sequence[Story], *, end_to_end: bool = False
) -> StoryEvaluation:
    """Every test story, turn by turn; ``end_to_end`` (Rasa's ``--e2e``): a user text the NLU
    reads otherwise than the story (intent, or entities and values) fails the story too, while
    the actions are still predicted after the story's own turns."""
    ensemble = model.make_ensemble()
    results = [
        predict_story(ensemble, model, flat.name, flat.source, flat.steps, end_to_end=end_to_end)
        for flat in resolve(list(stories))
    ]
    return StoryEvaluation(results)


def _event_yaml(event: dict[str, Any], bot_texts: frozenset[str]) -> dict[str, Any] | None:
    kind = event.get("event")
    if kind == "user":
        parse = event.get("parse_data") or {}
        out: dict[str, Any] = {}
        if event.get("text") is not None:
            out["user"] = event["text"]
        if ev.intent_name(event) is not None:
            out["intent"] = ev.intent_name(event)
        if parse.get("entities") and event.get("text") is None:
            out["entities"] = [{e["entity"]: e.get("value")} for e in parse["entities"]]
        return out
    if kind == "action":
        return {"bot" if event["name"] in bot_texts else "action": event["name"]}
    if kind == "slot":
        return {"slot_was_set": [{event["name"]: event.get("value")}]}
    if kind == "active_loop":
        return {"active_loop": event.get("name")}
    return None


def _step_lines(event: dict[str, Any], item: dict[str, Any], comment: str | None) -> list[str]:
    """One step of a written story, as Rasa's story writer gives it: a user step's intent first
    (with the comment), then its text as a ``|`` block with the entities marked up (no
    ``entities:``); another step with the comment on its first line."""
    text = item.get("user")
    if isinstance(text, str) and text and text == text.strip() and "\r" not in text:
        entities = (event.get("parse_data") or {}).get("entities") or []
        shown = annotated_message(text, entities)
        intent = [f"  - intent: {item['intent']}"] if "intent" in item else []
        user = "  - user: |" if not intent else "    user: |"
        lines = [*intent, user, *(f"      {line}" for line in shown.splitlines())]
    else:
        dumped = yaml.safe_dump([item], allow_unicode=True, sort_keys=False).rstrip("\n")
        lines = ["  " + line for line in dumped.splitlines()]
    if comment is not None:  # one line: a comment ends where its line does
        lines[0] += f"  # predicted: {' '.join(comment.splitlines())}"
    return lines


def failed_stories_yaml(results: Sequence[StoryResult], *, passed: bool = False) -> str:
    """Rasa's ``failed_test_stories.yml``: each failed story, with ``# predicted: X`` after every
    action the model got wrong (implicit ``action_listen`` turns are written only when wrong)
    and every user message the NLU read otherwise (end to end); ``passed``: the stories
    predicted right instead (``successful_test_stories.yml``)."""
    lines = ['version: "3.1"', "stories:"]
    for result in results:
        if result.passed != passed:
            continue
        lines.append(f"- story: {json.dumps(result.name, ensure_ascii=False)}")
        lines.append("  steps:")
        for index, (event, predicted) in enumerate(
            zip(result.events, result.predictions, strict=True)
        ):
            item = _event_yaml(event, result.bot_texts)
            if item is None:
                continue
            is_action = event.get("event") == "action"
            if is_action and predicted is None:
                continue  # not a prediction: the leading listen of a story
            wrong = is_action and predicted != event["name"]
            if is_action and event["name"] == ACTION_LISTEN and not wrong:
                continue
            comment = result.misread.get(index) or (predicted if wrong else None)
            lines.extend(_step_lines(event, item, comment))
    return "\n".join(lines) + "\n"


def write_reports(
    evaluation: StoryEvaluation, out_dir: Path, options: ReportOptions = DEFAULT_REPORTS
) -> dict[str, Any]:
    """``story_report.json``; ``failed_test_stories.yml`` (unless ``options.errors`` is off),
    ``successful_test_stories.yml`` (with ``options.successes``) and
    ``story_confusion_matrix.png`` (unless ``options.plots`` is off), as Rasa's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = evaluation.report()
    (out_dir / "story_report.json").write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    if options.errors:
        (out_dir / "failed_test_stories.yml").write_text(
            failed_stories_yaml(evaluation.results), encoding="utf-8"
        )
    if options.successes:
        (out_dir / "successful_test_stories.yml").write_text(
            failed_stories_yaml(evaluation.results, passed=True), encoding="utf-8"
        )
    if options.plots and evaluation.gold:
        from training.nlu.metrics import confusion_matrix
        from training.nlu.plots import confusion_matrix_png

        labels = sorted(set(evaluation.gold) | set(evaluation.predicted))
        matrix = confusion_matrix(evaluation.gold, evaluation.predicted, labels)
        confusion_matrix_png(matrix, labels, out_dir / "story_confusion_matrix.png")
    return report
