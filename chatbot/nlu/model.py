"""The trained NLU model: ``parse(text)`` gives Rasa's parse data; ``export`` and ``from_export``
move it in and out of a model file (tensors for safetensors, everything else JSON, no pickle).

The network runs in numpy (``runtime.JointRuntime``): serving a model never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from chatbot.ensemble import split_members
from chatbot.errors import ModelFileError
from chatbot.model_file import to_numpy
from chatbot.nlu.custom import META_KEY as CUSTOM_META
from chatbot.nlu.custom import TENSOR_PREFIX as CUSTOM_PREFIX
from chatbot.nlu.custom import CustomComponents
from chatbot.nlu.features import Featurizer
from chatbot.nlu.patterns import apply_synonyms, extractor_patterns, regex_entities
from chatbot.nlu.runtime import EnsembleRuntime, JointRuntime, MessageOutputs
from chatbot.nlu.settings import NetSizes, NLUSettings
from chatbot.nlu.tags import allowed_transitions, tag_names, tag_spans
from chatbot.nlu.tokenizer import Token, tokenize
from chatbot.nlu.types import (
    EntityPrediction,
    IntentPrediction,
    ParseResult,
    ResponseRanking,
    RetrievalPrediction,
    parse_off_the_loop_if_long,
)

if TYPE_CHECKING:
    from chatbot.nlu.network import JointNet

logger = logging.getLogger(__name__)

FORMAT = "chatbot.nlu.bilstm_crf"
FORMAT_VERSION = 1
EXTRACTOR = "BiLSTMCRF"
NLU_FALLBACK = "nlu_fallback"


@dataclass(frozen=True)
class Labels:
    """What the heads predict. ``roles``/``groups`` start with "" (none)."""

    intents: tuple[str, ...]
    entity_types: tuple[str, ...] = ()
    roles: tuple[str, ...] = ("",)
    groups: tuple[str, ...] = ("",)
    response_keys: tuple[str, ...] = ()  # "faq/ask_name", sorted

    @property
    def retrieval_intents(self) -> list[str]:
        return sorted({key.split("/", 1)[0] for key in self.response_keys})

    def to_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, list[str]]) -> Labels:
        return cls(**{k: tuple(v) for k, v in data.items()})


class NLUModel:
    """A BiLSTM-CRF joint intent classifier and entity tagger, with its pre- and post-processing.

    ``net`` is the trained torch ``JointNet`` (training hands it over; its weights are copied to
    numpy) or a ``JointRuntime`` (a model file's, or another model's), or an ``EnsembleRuntime``
    of several (``settings.ensemble_size``).
    """

    def __init__(
        self,
        settings: NLUSettings,
        labels: Labels,
        featurizer: Featurizer,
        net: JointNet | JointRuntime | EnsembleRuntime,
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.labels = labels
        self.featurizer = featurizer
        self.runtime = (
            net
            if isinstance(net, (JointRuntime, EnsembleRuntime))
            else JointRuntime.from_net(net, settings)
        )
        self.synonyms = dict(synonyms or {})
        # The pipeline's custom components (``chatbot.nlu.custom``), run around this model.
        self.custom: CustomComponents | None = None
        # RegexEntityExtractor's patterns where its options differ from the RegexFeaturizer's;
        # None: the features' matches serve (or no extractor).
        self._entity_patterns = (
            extractor_patterns(
                featurizer.patterns,
                labels.entity_types,
                use_regexes=settings.regex_entities_use_regexes,
                use_lookup_tables=settings.regex_entities_use_lookup_tables,
                word_boundaries=settings.regex_entities_use_word_boundaries,
                case_sensitive=settings.regex_entities_case_sensitive,
            )
            if settings.regex_entities
            else None
        )
        self._tags = tag_names(labels.entity_types, settings.tag_scheme)
        self._decoder = self.runtime.decoder
        self._retrieval = {
            intent: np.array(
                [i for i, k in enumerate(labels.response_keys) if k.startswith(intent + "/")]
            )
            for intent in labels.retrieval_intents
        }

    @property
    def intents(self) -> list[str]:
        return list(self.labels.intents)

    @property
    def entity_types(self) -> list[str]:
        return list(self.labels.entity_types)

    def members(self) -> list[NLUModel]:
        """An ensemble's networks (``settings.ensemble_size``), each as a model of its own with
        this model's labels and features; a model of one network is its only member."""
        if not isinstance(self.runtime, EnsembleRuntime):
            return [self]
        one = replace(self.settings, ensemble_size=1)
        return [
            NLUModel(one, self.labels, self.featurizer, member, self.synonyms)
            for member in self.runtime.members
        ]

    @property
    def has_tagger(self) -> bool:
        """Whether the network tags entities (a CRF), rather than only classifying intents."""
        return self._decoder is not None

    # ----------------------------------------------------------------------------------- parsing

    def parse(self, text: str) -> ParseResult:
        """``parse_text``, between the pipeline's custom components where it has some."""
        if self.custom is not None:
            return self.custom.parse(text, self.parse_text)
        return self.parse_text(text)

    def parse_text(self, text: str) -> ParseResult:
        """Intent, ranking, entities (and the response selector for retrieval intents) of a message.

        A message without tokens (empty, only spaces) is ``nlu_fallback`` with confidence 1.0: there
        is nothing to understand. A message longer than ``settings.max_tokens`` tokens is read up to
        that token (entities after it are not extracted).
        """
        tokens = tokenize(text)[: self.settings.max_tokens]
        if not tokens:
            fallback: IntentPrediction = {"name": NLU_FALLBACK, "confidence": 1.0}
            return {"text": text, "intent": fallback, "entities": [], "intent_ranking": [fallback]}
        matches = self.featurizer.patterns.matches(text, tokens)
        encoded = self.featurizer.encode(text, tokens, matches)
        out = self.runtime(encoded)
        probs = self._mixed(out, self.settings.ngram_intent_weight)
        roles = _softmax(out.role_logits) if out.role_logits is not None else None
        groups = _softmax(out.group_logits) if out.group_logits is not None else None
        intent, ranking = self._intents(probs)
        entities = self._entities(text, tokens, out.emissions, roles, groups)
        if self.settings.regex_entities:
            found = {(e["entity"], e["start"], e["end"]) for e in entities}
            if self._entity_patterns is not None:
                matches = self._entity_patterns.matches(text, tokens)
            for extra in regex_entities(text, matches, self.labels.entity_types):
                if (extra["entity"], extra["start"], extra["end"]) not in found:
                    entities.append(extra)  # type: ignore[arg-type]
        if self.settings.synonyms and self.synonyms:
            apply_synonyms(entities, self.synonyms)  # type: ignore[arg-type]
        result: ParseResult = {
            "text": text,
            "intent": intent,
            "entities": entities,
            "intent_ranking": ranking,
        }
        if out.response_logits is not None:
            result["response_selector"] = self._responses(out.response_logits)
        return result

    def intent_probabilities(self, text: str, ngram_share: float) -> np.ndarray:
        """The intent probabilities ``parse`` gives (before the fallback), with another share of
        the n-gram model: it only mixes the two heads, so one trained model shows every share."""
        tokens = tokenize(text)[: self.settings.max_tokens]
        matches = self.featurizer.patterns.matches(text, tokens)
        return self._mixed(self.runtime(self.featurizer.encode(text, tokens, matches)), ngram_share)

    @staticmethod
    def _mixed(out: MessageOutputs, share: float) -> np.ndarray:
        probs = _softmax(out.intent_logits)
        if out.ngram_logits is not None:
            probs = (1 - share) * probs + share * _softmax(out.ngram_logits)
        return probs

    async def parse_async(self, text: str) -> ParseResult:
        """``parse`` without holding up the event loop for long (``parse_off_the_loop_if_long``)."""
        if self.custom is not None:  # a project's code: its cost is unknown
            return await asyncio.to_thread(self.parse, text)
        return await parse_off_the_loop_if_long(self.parse_text, text)

    def _intents(self, probs: np.ndarray) -> tuple[IntentPrediction, list[IntentPrediction]]:
        order = np.argsort(-probs, kind="stable")[: self.settings.ranking_length]
        ranking: list[IntentPrediction] = [
            {"name": self.labels.intents[i], "confidence": float(probs[i])} for i in order
        ]
        top = ranking[0]["confidence"]
        second = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
        threshold, ambiguity = self.settings.fallback_threshold, self.settings.ambiguity_threshold
        if top < threshold or (len(ranking) > 1 and top - second < ambiguity):
            # Rasa's FallbackClassifier: the fallback's confidence is the threshold.
            ranking.insert(0, {"name": NLU_FALLBACK, "confidence": threshold})
        return dict(ranking[0]), ranking  # type: ignore[return-value]

    def _entities(
        self,
        text: str,
        tokens: list[Token],
        emissions: np.ndarray | None,
        roles: np.ndarray | None,
        groups: np.ndarray | None,
    ) -> list[EntityPrediction]:
        if emissions is None or self._decoder is None:
            return []
        path, marginals = self._decoder.decode(emissions)
        tags = [self._tags[i] for i in path]
        entities: list[EntityPrediction] = []
        for first, stop, label in tag_spans(tags):
            start, end = tokens[first].start, tokens[stop - 1].end
            confidence = float(np.mean([marginals[i, path[i]] for i in range(first, stop)]))
            entity: EntityPrediction = {
                "entity": label,
                "start": start,
                "end": end,
                "value": text[start:end],
                "confidence_entity": confidence,
                "extractor": EXTRACTOR,
            }
            for probs, names, key in (
                (roles, self.labels.roles, "role"),
                (groups, self.labels.groups, "group"),
            ):
                if probs is None:
                    continue
                mean = probs[first:stop].mean(0)
                best = int(mean.argmax())
                if names[best]:
                    entity[key] = names[best]  # type: ignore[literal-required]
                    entity[f"confidence_{key}"] = float(mean[best])  # type: ignore[literal-required]
            entities.append(entity)
        return entities

    def _responses(self, logits: np.ndarray) -> dict[str, object]:
        selector: dict[str, object] = {"all_retrieval_intents": self.labels.retrieval_intents}
        for intent, indices in self._retrieval.items():
            scores = logits[indices]
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            order = np.argsort(-probs, kind="stable")[: self.settings.ranking_length]
            ranking: list[ResponseRanking] = [
                {
                    "intent_response_key": self.labels.response_keys[indices[i]],
                    "confidence": float(probs[i]),
                }
                for i in order
            ]
            best = ranking[0]
            prediction: RetrievalPrediction = {
                "response": {
                    "intent_response_key": best["intent_response_key"],
                    "confidence": best["confidence"],
                    "utter_action": "utter_" + best["intent_response_key"],
                },
                "ranking": ranking,
            }
            selector[intent] = prediction
        return selector

    # ------------------------------------------------------------------------------ model files

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, object]]:
        """The model as tensors (numpy arrays named as in ``JointNet``'s state dict, for
        safetensors) and JSON-serialisable metadata."""
        tensors = {k: v.copy() for k, v in self.runtime.weights.items()}
        meta: dict[str, object] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "settings": self.settings.to_json(),
            "sizes": self.runtime.sizes.to_json(),
            "labels": self.labels.to_json(),
            "featurizer": self.featurizer.to_json(),
            "synonyms": dict(self.synonyms),
        }
        if self.custom is not None:
            custom_tensors, meta[CUSTOM_META] = self.custom.export()
            tensors.update(custom_tensors)
        return tensors, meta

    @classmethod
    def from_export(cls, tensors: Mapping[str, Any], meta: Mapping[str, object]) -> NLUModel:
        """The model of ``export``'s tensors (numpy arrays, or torch tensors) and metadata."""
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise ModelFileError(
                f"not an NLU model of format {FORMAT} v{FORMAT_VERSION}: "
                f"{meta.get('format')!r} v{meta.get('version')!r}"
            )
        try:
            settings = NLUSettings.from_json(meta["settings"])  # type: ignore[arg-type]
            labels = Labels.from_json(meta["labels"])  # type: ignore[arg-type]
            featurizer = Featurizer.from_json(meta["featurizer"])  # type: ignore[arg-type]
            sizes = NetSizes(**meta["sizes"])  # type: ignore[arg-type]
            scheme = settings.tag_scheme
            transitions = (
                allowed_transitions(tag_names(labels.entity_types, scheme), scheme)
                if sizes.tags
                else None
            )
            weights = {
                k: to_numpy(v) for k, v in tensors.items() if not k.startswith(CUSTOM_PREFIX)
            }
            runtime: JointRuntime | EnsembleRuntime
            if settings.ensemble_size > 1:
                runtime = EnsembleRuntime(
                    [
                        JointRuntime(member, settings, sizes, transitions)
                        for member in split_members(weights, settings.ensemble_size, "NLU")
                    ]
                )
            else:
                runtime = JointRuntime(weights, settings, sizes, transitions)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"NLU model metadata or tensors do not fit: {error}") from error
        model = cls(settings, labels, featurizer, runtime, meta.get("synonyms"))  # type: ignore[arg-type]
        if meta.get(CUSTOM_META) is not None:
            model.custom = CustomComponents.from_export(
                {k: v for k, v in tensors.items() if k.startswith(CUSTOM_PREFIX)},
                meta[CUSTOM_META],  # type: ignore[arg-type]
            )
        return model


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    return x / x.sum(axis=-1, keepdims=True)
