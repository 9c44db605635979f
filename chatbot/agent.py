"""A trained bot, ready to talk: ``Agent.load(model_path)`` and ``await agent.handle_text(...)``.

``TrainedModel`` is the content of a model file made runnable (domain, NLU model, policies);
``Agent`` adds the conversation store, locks and the custom-action executor around it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chatbot
from chatbot import model_file
from chatbot.actions.base import Action
from chatbot.actions.nlg import NLGClient
from chatbot.actions.registry import ActionRegistry, CustomActionExecutor
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.messages import UserMessage
from chatbot.dialogue.custom_policy import CustomPolicy, is_loaded_policy
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.dialogue.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from chatbot.dialogue.policy import Policy
from chatbot.dialogue.rules import RulePolicy
from chatbot.errors import ChatbotError, ModelFileError
from chatbot.model_check import check_layout, check_weights, damage
from chatbot.nlu.duckling import DucklingClient, DucklingConfig
from chatbot.nlu.intent_payload import parse_intent_payload
from chatbot.nlu.lookup_extractor import KIND as LOOKUP_KIND
from chatbot.nlu.lookup_extractor import LookupEntityExtractor
from chatbot.nlu.model import NLUModel
from chatbot.processor import Listener, MessageProcessor
from chatbot.project.custom_slots import CODE_FOLDER, has_custom_slots, resolve_slot_kinds
from chatbot.project.domain import (
    ACTION_LISTEN,
    ACTION_SESSION_START,
    DEFAULT_INTENTS,
    Domain,
)
from chatbot.project.domain_reader import domain_from_dict, domain_to_dict
from chatbot.store.base import ConversationStore
from chatbot.store.broker import EventBroker
from chatbot.store.memory import InMemoryStore

logger = logging.getLogger(__name__)

__version__ = chatbot.__version__

# Policy names in a model file -> how to rebuild them. An explicit table: the file names no code.
POLICY_LOADERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Policy]] = {
    "RulePolicy": RulePolicy.from_export,
    "MemoizationPolicy": MemoizationPolicy.from_export,
    "AugmentedMemoizationPolicy": AugmentedMemoizationPolicy.from_export,
    "LSTMPolicy": LSTMPolicy.from_export,
}


def register_policy_loader(
    name: str, loader: Callable[[dict[str, Any], dict[str, Any]], Policy]
) -> None:
    POLICY_LOADERS[name] = loader


@dataclass
class TrainedModel:
    domain: Domain
    policies: list[Policy]
    nlu: NLUModel | LookupEntityExtractor | None = None
    ensemble: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # The pipeline's DucklingEntityExtractor, asked beside the NLU (chatbot.nlu.duckling).
    duckling: DucklingConfig | None = None
    # Names of ``/intent`` payloads the domain lacks, each warned about once (bounded: a client
    # may send any name).
    _unknown_said: set[str] = field(default_factory=set, repr=False, compare=False)
    # The file it was read from (``from_file``), for ``/status``.
    source: str | None = field(default=None, repr=False, compare=False)

    def to_file(self, path: Path) -> None:
        with model_file.gc_paused():  # as reading: M's model was 2.0 s to write, 0.56 s paused
            self._write(path)

    def _write(self, path: Path) -> None:
        tensors: dict[str, Any] = {}
        policies_meta = []
        for i, policy in enumerate(self.policies):
            p_tensors, p_meta = policy.export()
            tensors.update(model_file.prefixed(f"policy.{i}.", p_tensors))
            policies_meta.append({"name": policy.name, "meta": p_meta})
        nlu_meta = None
        if self.nlu is not None:
            n_tensors, nlu_meta = self.nlu.export()
            tensors.update(model_file.prefixed("nlu.", n_tensors))
        meta = {
            **self.meta,
            "chatbot_version": __version__,
            "domain": domain_to_dict(self.domain),
            "policies": policies_meta,
            "ensemble": self.ensemble,
            "nlu": nlu_meta,
        }
        if self.duckling is not None:
            meta["duckling"] = self.duckling.to_json()
        model_file.save(path, meta, tensors)

    @classmethod
    def from_file(cls, path: Path) -> TrainedModel:
        with model_file.gc_paused():
            return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> TrainedModel:
        meta, tensors = model_file.load(path)
        check_layout(meta, str(path))
        check_weights(meta, tensors, str(path))
        part = "domain"  # the part being built, for a message naming it
        try:
            domain = domain_from_dict(meta["domain"])
            if has_custom_slots(domain):
                from chatbot.rasa_compat.loading import search_folders

                folders = search_folders(meta.get(CODE_FOLDER))
                domain, problems = resolve_slot_kinds(domain, folders)
                if problems:
                    raise ModelFileError(
                        f"{problems[0]}; run chatbot from the project's folder, where its code is"
                    )
            policies: list[Policy] = []
            for i, entry in enumerate(meta["policies"]):
                part = f"policy {entry['name']}"
                loader = POLICY_LOADERS.get(entry["name"])
                if loader is None and is_loaded_policy(entry["meta"]):
                    loader = CustomPolicy.from_export  # a project's Rasa policy class
                if loader is None:
                    raise ModelFileError(
                        f"{path}: unknown policy '{entry['name']}' in the model; "
                        f"known: {', '.join(sorted(POLICY_LOADERS))}"
                    )
                policies.append(
                    loader(model_file.unprefixed(f"policy.{i}.", tensors), entry["meta"])
                )
            part = "NLU"
            nlu: NLUModel | LookupEntityExtractor | None = None
            if meta["nlu"] is not None:
                nlu_tensors = model_file.unprefixed("nlu.", tensors)
                if meta["nlu"].get("kind") == LOOKUP_KIND:
                    nlu = LookupEntityExtractor.from_export(nlu_tensors, meta["nlu"])
                else:
                    nlu = NLUModel.from_export(nlu_tensors, meta["nlu"])
            part = "Duckling settings"
            duckling = None
            if meta.get("duckling") is not None:
                duckling = DucklingConfig.from_json(meta["duckling"])
        except ModelFileError as exc:
            raise ModelFileError(_naming(path, str(exc))) from exc
        except ChatbotError as exc:  # the domain's or the NLU settings' own checks
            raise ModelFileError(
                f"{path}: the model's content is invalid: {_one_line(exc)}; retrain it"
            ) from exc
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ModelFileError(
                f"{path}: the model's {part} is damaged ({damage(exc)}); retrain it"
            ) from exc
        ensemble = meta.get("ensemble") or {}
        if not isinstance(ensemble, dict):
            raise ModelFileError(f"{path}: the model's 'ensemble' must be a JSON object")
        own = ("domain", "policies", "nlu", "ensemble", "duckling")
        rest = {k: v for k, v in meta.items() if k not in own}
        model = cls(domain, policies, nlu, dict(ensemble), rest, duckling, source=str(path))
        model.check(str(path))
        return model

    def check(self, source: str) -> None:
        """Run the model once on scratch input, as a first message would: the NLU parses a few
        texts, every policy predicts after a greeting. A model whose parts do not fit together
        (a file written by hand or by another tool, with a valid checksum) is refused here with a
        ``ModelFileError``, instead of failing every conversation once it is served."""
        probe = "\x00model-check"  # no conversation id holds a NUL: no cache entry is shared
        part = "NLU"  # the part running, for a message naming it
        try:
            parse_data: dict[str, Any] = {}
            if self.nlu is not None:
                # Our model alone: a project's custom components are its code, run on messages.
                parse = self.nlu.parse_text if isinstance(self.nlu, NLUModel) else self.nlu.parse
                for text in ("", "日本語のテキスト 123", "hello"):
                    parse_data = dict(parse(text))
            intents = self.domain.intent_names
            if intents:
                parse_data["intent"] = {"name": intents[0], "confidence": 1.0}
            conversation = Conversation(
                probe,
                self.domain,
                [
                    ev.action(ACTION_SESSION_START),
                    ev.simple("session_started"),
                    ev.action(ACTION_LISTEN),
                    ev.user("hello", parse_data),  # type: ignore[arg-type]
                ],
            )
            for policy in self.policies:
                part = f"policy {policy.name}"
                policy.predict(conversation)
            part = "ensemble settings"
            self.make_ensemble().predict(conversation)
        except ChatbotError as exc:
            raise ModelFileError(
                f"{source}: the model fails on a first message: {_one_line(exc)}; retrain it"
            ) from exc
        except Exception as exc:  # whatever a model's parts do when they do not fit together
            # Python's or numpy's own words (a matmul's dimensions) tell a user nothing; -v
            # shows them.
            logger.debug("the model check failed in its %s", part, exc_info=True)
            raise ModelFileError(
                f"{source}: the model fails on a first message: its {part} does not fit the "
                "rest of it; retrain it"
            ) from exc
        finally:
            for policy in self.policies:
                if isinstance(policy, LSTMPolicy):
                    policy.forget(probe)

    def make_ensemble(self) -> PolicyEnsemble:
        return PolicyEnsemble(
            self.policies,
            fallback_threshold=float(self.ensemble.get("fallback_threshold", 0.3)),
            fallback_action=str(self.ensemble.get("fallback_action", "action_default_fallback")),
        )

    async def parse(self, text: str, duckling: DucklingClient | None = None) -> dict[str, Any]:
        """Rasa parse data for a message: ``/intent{...}`` payloads directly, else the NLU model,
        with the Duckling server's entities after its own where the pipeline has one and
        ``duckling`` (the agent's client) is given."""
        payload = parse_intent_payload(text)
        if payload is not None:
            self._say_unknown(payload)
            return payload
        asking = None
        if duckling is not None and self.duckling is not None:
            asking = asyncio.ensure_future(duckling.entities(self.duckling, text))
        parsed: dict[str, Any]
        try:
            if self.nlu is not None:
                parsed = dict(await self.nlu.parse_async(text))
            else:
                parsed = {
                    "text": text,
                    "intent": {"name": None, "confidence": 0.0},
                    "entities": [],
                    "intent_ranking": [],
                }
        except BaseException:
            if asking is not None:
                asking.cancel()
            raise
        if asking is not None:
            parsed["entities"] = [*(parsed.get("entities") or []), *await asking]
        selector = parsed.get("response_selector")
        if isinstance(selector, dict):
            _add_responses(selector, self.domain)
        return parsed

    def _say_unknown(self, payload: dict[str, Any]) -> None:
        """Rasa's warning for a ``/intent{...}`` payload (a button's, a client's) naming an
        intent or entity the domain lacks: the policies read it as nothing they know."""
        intent = (payload.get("intent") or {}).get("name")
        known = intent in self.domain.intents or intent in DEFAULT_INTENTS
        unknown = [] if known else [("intent", intent)]
        unknown += [
            ("entity", entity["entity"])
            for entity in payload.get("entities") or ()
            if entity.get("entity") not in self.domain.entities
        ]
        for kind, name in unknown:
            if f"{kind}:{name}" in self._unknown_said or len(self._unknown_said) >= 100:
                continue
            self._unknown_said.add(f"{kind}:{name}")
            logger.warning(
                "a message names the %s '%s', which is not in the domain: make sure every %s "
                "is listed in the domain (said once per name)",
                kind,
                name,
                kind,
            )


def _add_responses(selector: dict[str, Any], domain: Domain) -> None:
    """Each retrieval intent's selected response with its variations (``responses``), as Rasa's
    ResponseSelector gives them: a custom action may read
    ``latest_message["response_selector"]["faq"]["response"]["responses"][0]["text"]``."""
    for key, prediction in selector.items():
        response = prediction.get("response") if isinstance(prediction, dict) else None
        if key == "all_retrieval_intents" or not isinstance(response, dict):
            continue
        variations = domain.responses.get(str(response.get("utter_action")), ())
        response["responses"] = [dict(variation.data) for variation in variations]


def _one_line(exc: BaseException) -> str:
    return "; ".join(line for line in str(exc).splitlines() if line.strip())


def _naming(path: Path, message: str) -> str:
    """``message`` beginning with the model file's path (once)."""
    return message if message.startswith(str(path)) else f"{path}: {message}"


class NoModelLoaded(ChatbotError):
    """The agent's model was unloaded (``DELETE /model``) and no other is loaded yet."""

    def __init__(self) -> None:
        super().__init__("no model is loaded; load one with PUT /model")


def latest_model(folder: Path) -> Path:
    """The newest ``*.model`` file in ``folder`` (a project's ``models/``)."""
    candidates = sorted(folder.glob("*.model"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ModelFileError(
            f"{folder}: no trained model (*.model) here; run `chatbot train` first"
        )
    return candidates[-1]


class Agent:
    """A trained model plus where its conversations live.

    The model can be unloaded (``unload_model``), or be None from the start; until one is loaded,
    everything that needs it (``model``, ``domain``, ``processor``) raises ``NoModelLoaded``,
    while the stores, locks and action executor stay as they are.
    """

    def __init__(
        self,
        model: TrainedModel | None,
        *,
        store: ConversationStore | None = None,
        locks: Any = None,
        action_executor: CustomActionExecutor | None = None,
        actions: Mapping[str, Action] | None = None,
        nlg: NLGClient | None = None,
        broker: EventBroker | None = None,
    ) -> None:
        from chatbot.store.locks import InMemoryLockStore

        self.store = store or InMemoryStore()
        self.locks = locks or InMemoryLockStore()
        self.action_executor = action_executor
        self.actions = dict(actions or {})  # in-process actions by name (a knowledge base's)
        # Told every batch of stored events, by this and any later model's processor.
        self.listeners: list[Listener] = []
        self.nlg = nlg
        # Asks a Duckling server where the model's pipeline has a DucklingEntityExtractor.
        self.duckling = DucklingClient()
        # Publishes every stored event (endpoints.yml ``event_broker:``); started by the server.
        self.broker = broker
        if broker is not None:
            self.listeners.append(broker.publish)
        # None: no model yet (one is expected from PUT /model or a model server).
        self._model: TrainedModel | None = model
        self._processor = self._make_processor(model) if model is not None else None

    def replace_store(self, store: ConversationStore) -> None:
        """Keep conversations in ``store`` from now on (the shell's fallback to memory)."""
        self.store = store
        if self._processor is not None:
            self._processor.store = store

    def _make_processor(self, model: TrainedModel) -> MessageProcessor:
        """The processor of a model about to be served (at construction, ``replace_model``),
        with a warning where its custom actions have nothing to run them."""
        registry = ActionRegistry(model.domain, self.action_executor, self.actions)
        registry.warn_unserved()
        return MessageProcessor(
            model.domain,
            functools.partial(model.parse, duckling=self.duckling),
            model.make_ensemble(),
            registry,
            self.store,
            self.locks,
            listeners=self.listeners,
            nlg=self.nlg,
        )

    @property
    def is_ready(self) -> bool:
        """Whether a model is loaded."""
        return self._model is not None

    @property
    def model(self) -> TrainedModel:
        if self._model is None:
            raise NoModelLoaded
        return self._model

    @property
    def processor(self) -> MessageProcessor:
        if self._processor is None:
            raise NoModelLoaded
        return self._processor

    @property
    def domain(self) -> Domain:
        return self.model.domain

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Agent:
        """From a model file, or from a project folder's newest model in ``models/``."""
        path = Path(path)
        if path.is_dir():
            path = latest_model(path / "models" if (path / "models").is_dir() else path)
        return cls(TrainedModel.from_file(path), **kwargs)

    def replace_model(self, model: TrainedModel) -> None:
        """Serve another model from now on; conversations stay in the store."""
        self._processor = self._make_processor(model)
        self._model = model

    def unload_model(self) -> None:
        """Serve no model until ``replace_model``; messages meanwhile raise NoModelLoaded."""
        self._model = None
        self._processor = None

    async def parse(self, text: str) -> dict[str, Any]:
        return await self.model.parse(text, self.duckling)

    async def handle_text(
        self,
        text: str,
        sender_id: str = "default",
        *,
        input_channel: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The bot's messages in answer to ``text`` (Rasa's REST channel format)."""
        message = UserMessage(text, sender_id, input_channel, metadata or {})
        return await self.processor.handle_message(message)

    async def handle_message(self, message: UserMessage) -> list[dict[str, Any]]:
        return await self.processor.handle_message(message)

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.close()
        if self.nlg is not None:
            await self.nlg.close()
        await self.duckling.close()
        await self.store.close()
