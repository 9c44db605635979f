"""The trained NLU model: ``parse(text)`` gives Rasa's parse data; ``export`` and ``from_export``
move it in and out of a model file (tensors for safetensors, everything else JSON, no pickle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from chatbot.errors import ModelFileError
from chatbot.nlu.features import Featurizer
from chatbot.nlu.network import JointNet, NetSizes, collate
from chatbot.nlu.patterns import apply_synonyms, regex_entities
from chatbot.nlu.settings import NLUSettings
from chatbot.nlu.tags import allowed_transitions, tag_names, tag_spans
from chatbot.nlu.tokenizer import Token, tokenize
from chatbot.nlu.types import (
    EntityPrediction,
    IntentPrediction,
    ParseResult,
    ResponseRanking,
    RetrievalPrediction,
)

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
    """A BiLSTM-CRF joint intent classifier and entity tagger, with its pre- and post-processing."""

    def __init__(
        self,
        settings: NLUSettings,
        labels: Labels,
        featurizer: Featurizer,
        net: JointNet,
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.labels = labels
        self.featurizer = featurizer
        self.net = net.eval()
        self.synonyms = dict(synonyms or {})
        self._tags = tag_names(labels.entity_types)
        self._decoder = net.crf.decoder() if net.crf is not None else None
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

    # ----------------------------------------------------------------------------------- parsing

    def parse(self, text: str) -> ParseResult:
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
        with torch.inference_mode():
            out = self.net(collate([encoded]))
            probs = torch.softmax(out.intent_logits[0], 0)
            if out.ngram_logits is not None:
                share = self.settings.ngram_intent_weight
                probs = (1 - share) * probs + share * torch.softmax(out.ngram_logits[0], 0)
            intent_probs = probs.numpy()
            emissions = out.emissions[0].double().numpy() if out.emissions is not None else None
            roles = (
                torch.softmax(out.role_logits[0], 1).numpy()
                if out.role_logits is not None
                else None
            )
            groups = (
                torch.softmax(out.group_logits[0], 1).numpy()
                if out.group_logits is not None
                else None
            )
            responses = out.response_logits[0].numpy() if out.response_logits is not None else None
        intent, ranking = self._intents(intent_probs)
        entities = self._entities(text, tokens, emissions, roles, groups)
        if self.settings.regex_entities:
            found = {(e["entity"], e["start"], e["end"]) for e in entities}
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
        if responses is not None:
            result["response_selector"] = self._responses(responses)
        return result

    async def parse_async(self, text: str) -> ParseResult:
        """``parse`` in a worker thread, so the event loop never waits for it.

        A parse takes one to two milliseconds (docs/benchmarks_nlu.md), a thread hop some tens of
        microseconds; torch releases the GIL while it computes.
        """
        return await asyncio.to_thread(self.parse, text)

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

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        """The model as tensors (for safetensors) and JSON-serialisable metadata."""
        tensors = {k: v.detach().clone().contiguous() for k, v in self.net.state_dict().items()}
        meta: dict[str, object] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "settings": self.settings.to_json(),
            "sizes": self.net.sizes.to_json(),
            "labels": self.labels.to_json(),
            "featurizer": self.featurizer.to_json(),
            "synonyms": dict(self.synonyms),
        }
        return tensors, meta

    @classmethod
    def from_export(
        cls, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, object]
    ) -> NLUModel:
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
            net = build_net(settings, sizes, labels)
            net.load_state_dict(dict(tensors), strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ModelFileError(f"NLU model metadata or tensors do not fit: {error}") from error
        return cls(settings, labels, featurizer, net, meta.get("synonyms"))  # type: ignore[arg-type]


def build_net(settings: NLUSettings, sizes: NetSizes, labels: Labels) -> JointNet:
    transitions = allowed_transitions(tag_names(labels.entity_types)) if sizes.tags else None
    return JointNet(settings, sizes, transitions)
