"""What a Rasa 3 custom NLU component imports for its data: ``Message``
(``rasa.shared.nlu.training_data.message``), ``TrainingData``
(``rasa.shared.nlu.training_data.training_data``), the key names of ``rasa.shared.nlu.constants``,
``Token`` and ``Tokenizer`` (``rasa.nlu.tokenizers.tokenizer``), ``EntityExtractorMixin``
(``rasa.nlu.extractors.extractor``) and ``IntentClassifier``
(``rasa.nlu.classifiers.classifier``), as Rasa defines them for components."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chatbot.rasa_compat.engine import GraphComponent

# rasa.shared.nlu.constants
TEXT = "text"
INTENT = "intent"
RESPONSE = "response"
RESPONSE_SELECTOR = "response_selector"
INTENT_RESPONSE_KEY = "intent_response_key"
ACTION_TEXT = "action_text"
ACTION_NAME = "action_name"
INTENT_NAME_KEY = "name"
FULL_RETRIEVAL_INTENT_NAME_KEY = "full_retrieval_intent_name"
METADATA = "metadata"
METADATA_INTENT = "intent"
METADATA_EXAMPLE = "example"
INTENT_RANKING_KEY = "intent_ranking"
PREDICTED_CONFIDENCE_KEY = "confidence"
RESPONSE_IDENTIFIER_DELIMITER = "/"
ENTITIES = "entities"
ENTITY_TAGS = "entity_tags"
ENTITY_ATTRIBUTE_TYPE = "entity"
ENTITY_ATTRIBUTE_GROUP = "group"
ENTITY_ATTRIBUTE_ROLE = "role"
ENTITY_ATTRIBUTE_VALUE = "value"
ENTITY_ATTRIBUTE_TEXT = "text"
ENTITY_ATTRIBUTE_START = "start"
ENTITY_ATTRIBUTE_END = "end"
ENTITY_ATTRIBUTE_CONFIDENCE = "confidence"
ENTITY_ATTRIBUTE_CONFIDENCE_TYPE = "confidence_entity"
ENTITY_ATTRIBUTE_CONFIDENCE_ROLE = "confidence_role"
ENTITY_ATTRIBUTE_CONFIDENCE_GROUP = "confidence_group"
NO_ENTITY_TAG = "O"
EXTRACTOR = "extractor"
PROCESSORS = "processors"
FEATURE_TYPE_SENTENCE = "sentence"
FEATURE_TYPE_SEQUENCE = "sequence"
SPLIT_ENTITIES_BY_COMMA = "split_entities_by_comma"
# rasa.nlu.constants: where a tokenizer puts a text's tokens
TOKENS_NAMES = {TEXT: "text_tokens", INTENT: "intent_tokens", RESPONSE: "response_tokens"}

CONSTANTS = {name: value for name, value in dict(globals()).items() if name.isupper()}


class Message:
    """One message (or training example) as a dict of properties; those set with
    ``add_to_output=True`` (and the text) are the parse result's."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        output_properties: set[str] | None = None,
        time: float | None = None,
        features: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.time = time
        self.data: dict[str, Any] = dict(data) if data else {}
        self.data.update(kwargs)
        self.features: list[Any] = features if features else []
        self.output_properties: set[str] = set(output_properties or ())
        self.output_properties.add(TEXT)

    def set(self, prop: str, info: Any, add_to_output: bool = False) -> None:
        self.data[prop] = info
        if add_to_output:
            self.output_properties.add(prop)

    def get(self, prop: str, default: Any = None) -> Any:
        return self.data.get(prop, default)

    def add_features(self, features: Any) -> None:
        if features is not None:
            self.features.append(features)

    def add_diagnostic_data(self, origin: str, data: dict[str, Any]) -> None:
        self.data.setdefault("diagnostic_data", {}).setdefault(origin, {}).update(data)

    def as_dict(self, only_output_properties: bool = False) -> dict[str, Any]:
        if only_output_properties:
            return {k: v for k, v in self.data.items() if k in self.output_properties}
        return dict(self.data)

    def as_dict_nlu(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k != TOKENS_NAMES[TEXT]}

    def get_full_intent(self) -> str | None:
        full = self.get(INTENT_RESPONSE_KEY)
        return full if full else self.get(INTENT)

    @staticmethod
    def separate_intent_response_key(original_intent: str) -> tuple[str, str | None]:
        intent, _, key = original_intent.partition(RESPONSE_IDENTIFIER_DELIMITER)
        return intent, key or None

    @classmethod
    def build(
        cls,
        text: str,
        intent: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        intent_metadata: Any = None,
        example_metadata: Any = None,
        **kwargs: Any,
    ) -> Message:
        data: dict[str, Any] = {TEXT: text}
        if intent:
            name, key = cls.separate_intent_response_key(intent)
            data[INTENT] = name
            if key:
                data[INTENT_RESPONSE_KEY] = intent
        if entities is not None:
            data[ENTITIES] = entities
        if intent_metadata is not None or example_metadata is not None:
            data[METADATA] = {METADATA_INTENT: intent_metadata, METADATA_EXAMPLE: example_metadata}
        return cls(data, **kwargs)

    def __repr__(self) -> str:
        return f"Message({self.data!r})"


class TrainingData:
    """A project's NLU data as Rasa gives it to a component's ``train``."""

    def __init__(
        self,
        training_examples: list[Message] | None = None,
        entity_synonyms: dict[str, str] | None = None,
        regex_features: list[dict[str, str]] | None = None,
        lookup_tables: list[dict[str, Any]] | None = None,
        responses: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.training_examples = list(training_examples or [])
        self.entity_synonyms = dict(entity_synonyms or {})
        self.regex_features = list(regex_features or [])
        self.lookup_tables = list(lookup_tables or [])
        self.responses = dict(responses or {})

    @property
    def nlu_examples(self) -> list[Message]:
        return [m for m in self.training_examples if m.get(TEXT) is not None]

    @property
    def intent_examples(self) -> list[Message]:
        return [m for m in self.nlu_examples if m.get(INTENT)]

    @property
    def response_examples(self) -> list[Message]:
        return [m for m in self.nlu_examples if m.get(INTENT_RESPONSE_KEY)]

    @property
    def entity_examples(self) -> list[Message]:
        return [m for m in self.nlu_examples if m.get(ENTITIES)]

    @property
    def intents(self) -> set[str]:
        return {m.get(INTENT) for m in self.intent_examples}

    @property
    def retrieval_intents(self) -> set[str]:
        return {m.get(INTENT) for m in self.response_examples}

    @property
    def entities(self) -> set[str]:
        return {e[ENTITY_ATTRIBUTE_TYPE] for m in self.entity_examples for e in m.get(ENTITIES)}

    @property
    def entity_roles(self) -> set[str]:
        return self._attributes(ENTITY_ATTRIBUTE_ROLE)

    @property
    def entity_groups(self) -> set[str]:
        return self._attributes(ENTITY_ATTRIBUTE_GROUP)

    def _attributes(self, key: str) -> set[str]:
        return {
            e[key] for m in self.entity_examples for e in m.get(ENTITIES) if e.get(key) is not None
        }

    @property
    def number_of_examples_per_intent(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.intent_examples:
            counts[m.get(INTENT)] = counts.get(m.get(INTENT), 0) + 1
        return counts

    @property
    def number_of_examples_per_entity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.entity_examples:
            for e in m.get(ENTITIES):
                key = f"{ENTITY_ATTRIBUTE_TYPE} '{e[ENTITY_ATTRIBUTE_TYPE]}'"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def is_empty(self) -> bool:
        return not self.training_examples


class Token:
    """A token of a message's text with its character offsets."""

    def __init__(
        self,
        text: str,
        start: int,
        end: int | None = None,
        data: dict[str, Any] | None = None,
        lemma: str | None = None,
    ) -> None:
        self.text = text
        self.start = start
        self.end = end if end is not None else start + len(text)
        self.data = data if data else {}
        self.lemma = lemma or text

    def set(self, prop: str, info: Any) -> None:
        self.data[prop] = info

    def get(self, prop: str, default: Any = None) -> Any:
        return self.data.get(prop, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return (self.start, self.end, self.text) == (other.start, other.end, other.text)

    def __hash__(self) -> int:
        return hash((self.start, self.end, self.text))

    def __repr__(self) -> str:
        return f"<Token object value='{self.text}' start={self.start} end={self.end}>"


class Tokenizer(GraphComponent):
    """Rasa's base class of tokenizers; importable so that a custom tokenizer's module loads,
    and then refused by name (``chatbot.nlu.custom``): our model reads its own tokens."""

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        raise NotImplementedError


class IntentClassifier:
    """Rasa's marker base class of intent classifiers."""


class EntityExtractorMixin:
    """Rasa's helpers of entity extractors: they name themselves in the entities they add."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def add_extractor_name(self, entities: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        out = list(entities)
        for entity in out:
            entity[EXTRACTOR] = self.name
        return out

    def add_processor_name(self, entity: dict[str, Any]) -> dict[str, Any]:
        entity.setdefault(PROCESSORS, []).append(self.name)
        return entity
