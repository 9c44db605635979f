"""Custom NLU components written as Rasa 3's documentation writes them (imports from ``rasa``),
copied into a test project's ``addons`` package by ``test_custom_components.py``."""

from __future__ import annotations

import json
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class SpellFixer(GraphComponent):
    """Replaces the misspellings its config lists (before the classifier)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"fixes": {"helo": "hello"}}

    def __init__(self, config: dict[str, Any]) -> None:
        self.fixes = config["fixes"]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            words = message.get(TEXT).split(" ")
            fixed = [self.fixes.get(w, w) for w in words]
            if fixed != words:
                entity = {"entity": "fixed", "value": len([w for w in words if w in self.fixes])}
                message.set(ENTITIES, [entity], add_to_output=True)
            message.set(TEXT, " ".join(fixed))
            message.set("seen_intent_before", message.get(INTENT), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            example.set("fixed", True)
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class SentimentAnalyzer(GraphComponent, EntityExtractorMixin):
    """A lexicon: a word of its lists is a ``sentiment`` entity (after the classifier)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"positive": ["love", "great"], "negative": ["hate", "awful"]}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if "boom" in message.get(TEXT):
                message.set("sentiment_partial", True, add_to_output=True)
                raise RuntimeError("the lexicon exploded")
            if "broken" in message.get(TEXT):
                message.set(ENTITIES, "not a list", add_to_output=True)
                message.set("unserialisable", {1, 2}, add_to_output=True)
                return messages
            found = []
            for token in message.get("text_tokens"):
                for value in ("positive", "negative"):
                    if token.text.lower() in self.config[value]:
                        found.append(
                            {
                                "entity": "sentiment",
                                "value": value,
                                "start": token.start,
                                "end": token.end,
                                "confidence": 1.0,
                            }
                        )
            entities = message.get(ENTITIES, []) + self.add_extractor_name(found)
            message.set(ENTITIES, entities, add_to_output=True)
            message.set("seen_intent_after", message.get(INTENT)["name"], add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class KeywordCounter(GraphComponent):
    """Learns each intent's most frequent word and keeps it in its model storage."""

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        keywords: dict[str, str] | None = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self.keywords = keywords or {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        counts: dict[str, dict[str, int]] = {}
        for example in training_data.intent_examples:
            assert example.get("fixed"), "the earlier component's process_training_data ran"
            for word in example.get(TEXT).lower().split():
                per = counts.setdefault(word, {})
                per[example.get(INTENT)] = per.get(example.get(INTENT), 0) + 1
        keywords = {w: max(c, key=c.get) for w, c in counts.items() if len(c) == 1}
        with self._model_storage.write_to(self._resource) as directory:
            (directory / "nested").mkdir()
            (directory / "nested" / "keywords.json").write_text(json.dumps(keywords))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> GraphComponent:
        with model_storage.read_from(resource) as directory:
            keywords = json.loads((directory / "nested" / "keywords.json").read_text())
        return cls(model_storage, resource, keywords)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            hits = [
                self.keywords[w] for w in message.get(TEXT).lower().split() if w in self.keywords
            ]
            message.set("keyword_intent", hits[0] if hits else None, add_to_output=True)
        return messages
