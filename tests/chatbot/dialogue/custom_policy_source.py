"""A custom policy written as Rasa 3's documentation writes one (imports from ``rasa``), copied
into a test project's package by ``test_custom_policy.py``."""

from __future__ import annotations

import json
from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT], is_trainable=True
)
class IntentActionPolicy(Policy):
    """After a user message, the action the stories answered its intent with."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"priority": 2, "confidence": 0.9, "rules": False}

    @classmethod
    def supported_data(cls) -> SupportedData:
        return SupportedData.ML_AND_RULE_DATA

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        lookup: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context)
        self.lookup = lookup or {}

    def train(
        self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        self.lookup["__trackers__"] = [
            len(training_trackers),
            sum(1 for t in training_trackers if t.is_rule_tracker),
        ]
        for tracker in training_trackers:
            intent = None
            for event in tracker.events:
                if isinstance(event, UserUttered):
                    intent = event.intent_name
                elif (
                    isinstance(event, ActionExecuted)
                    and intent
                    and event.action_name != ACTION_LISTEN_NAME
                ):
                    assert event.action_name in domain.action_names_or_texts
                    self.lookup.setdefault(intent, event.action_name)
                    intent = None
        with self._model_storage.write_to(self._resource) as directory:
            (directory / "lookup.json").write_text(json.dumps(self.lookup))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> IntentActionPolicy:
        with model_storage.read_from(resource) as directory:
            lookup = json.loads((directory / "lookup.json").read_text())
        return cls(config, model_storage, resource, execution_context, lookup)

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        result = self._default_predictions(domain)
        confidence = self.config["confidence"]
        if tracker.latest_action_name != ACTION_LISTEN_NAME:
            result[domain.index_for_action(ACTION_LISTEN_NAME)] = confidence
            return self._prediction(result)
        intent = tracker.latest_message.intent.get(INTENT_NAME_KEY)
        if intent == "explode":
            raise RuntimeError("the policy exploded")
        if intent == "miscount":
            return self._prediction(result[:-1])
        action = self.lookup.get(intent)
        if tracker.get_slot("vip") and intent == "greet":
            action = "utter_welcome_back"
        if action:
            result[domain.index_for_action(action)] = confidence
        events: list[Any] | None = [SlotSet("seen", True)] if intent == "goodbye" else None
        if events and tracker.get_slot("vip"):
            events = [{"event": "bogus"}]  # no event: left out, the action stands
        return self._prediction(result, events=events)
