"""What a Rasa 3 custom NLU component imports from ``rasa.engine``: ``GraphComponent`` and
``ExecutionContext`` (``rasa.engine.graph``), ``Resource`` (``rasa.engine.storage.resource``),
``ModelStorage`` (``rasa.engine.storage.storage``) and ``DefaultV1Recipe``
(``rasa.engine.recipes.default_recipe``), with the behaviour Rasa documents for custom graph
components. ``chatbot.nlu.custom`` runs the components."""

from __future__ import annotations

import contextlib
import enum
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar


@dataclass
class ExecutionContext:
    """How a component is run: ``model_id`` is None while training."""

    graph_schema: Any = None
    model_id: str | None = None
    should_add_diagnostic_data: bool = False
    is_finetuning: bool = False
    node_name: str | None = None


class GraphComponent:
    """The interface of Rasa's custom graph components: ``create`` while training, ``load``
    (by default ``create``) when a model is served."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        raise NotImplementedError(f"{cls.__name__} does not implement create()")

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> GraphComponent:
        return cls.create(config, model_storage, resource, execution_context)

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @staticmethod
    def supported_languages() -> list[str] | None:
        return None

    @staticmethod
    def not_supported_languages() -> list[str] | None:
        return None

    @staticmethod
    def required_packages() -> list[str]:
        return []

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return None


@dataclass(frozen=True)
class Resource:
    """A component's place in the model storage."""

    name: str
    output_fingerprint: str = ""

    @classmethod
    def from_cache(cls, *args: Any, **kwargs: Any) -> Resource:
        raise NotImplementedError("chatbot does not cache graph components")

    def to_cache(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("chatbot does not cache graph components")


class ModelStorage:
    """A folder per resource: ``write_to`` while training, ``read_from`` (``ValueError`` where
    nothing was written) when served. ``chatbot.nlu.custom`` keeps the folders' files in the
    model file."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, resource: Resource) -> Path:
        return self.root / resource.name

    @contextlib.contextmanager
    def write_to(self, resource: Resource) -> Iterator[Path]:
        folder = self.folder(resource)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder

    @contextlib.contextmanager
    def read_from(self, resource: Resource) -> Iterator[Path]:
        folder = self.folder(resource)
        if not folder.is_dir():
            raise ValueError(f"resource '{resource.name}' has no persisted data")
        yield folder

    def clear(self, resource: Resource) -> None:
        shutil.rmtree(self.folder(resource), ignore_errors=True)


# Rasa's local storage: components that name it get ours.
LocalModelStorage = ModelStorage

_Registered = TypeVar("_Registered", bound=type)


@dataclass(frozen=True)
class Registration:
    """What ``DefaultV1Recipe.register`` said of a class."""

    types: tuple[str, ...]
    is_trainable: bool
    model_from: str | None = None


REGISTRATION_KEY = "__rasa_registration__"


class DefaultV1Recipe:
    """Rasa's default recipe: only its ``register`` decorator matters here."""

    name = "default.v1"

    @enum.unique
    class ComponentType(enum.Enum):
        MESSAGE_TOKENIZER = 0
        MESSAGE_FEATURIZER = 1
        INTENT_CLASSIFIER = 2
        ENTITY_EXTRACTOR = 3
        POLICY_WITHOUT_END_TO_END_SUPPORT = 4
        POLICY_WITH_END_TO_END_SUPPORT = 5
        MODEL_LOADER = 6

    @staticmethod
    def register(
        component_types: DefaultV1Recipe.ComponentType | list[DefaultV1Recipe.ComponentType],
        is_trainable: bool,
        model_from: str | None = None,
    ) -> Callable[[_Registered], _Registered]:
        kinds = component_types if isinstance(component_types, list) else [component_types]

        def decorate(registered: _Registered) -> _Registered:
            registration = Registration(
                tuple(getattr(kind, "name", str(kind)) for kind in kinds),
                bool(is_trainable),
                model_from,
            )
            setattr(registered, REGISTRATION_KEY, registration)
            return registered

        return decorate
