"""Rasa's slot classes (``rasa.shared.core.slots``) and a project's own slot types.

A Rasa 3 domain may name a class of the project's as a slot's type (``type:
addons.slots.NumberOfPeopleSlot``, a subclass of Rasa's ``Slot``): the policies see the slot
through the class's ``as_feature()``, a list of ``feature_dimensionality()`` numbers, instead of
the built-in types' features. ``SlotKind`` imports such a class (with Rasa's names provided where
Rasa is not installed), makes one instance per slot as Rasa's domain does (the slot's name, its
mappings and the domain's other keys for it as keyword arguments) and turns a value into the
features the policies see. The built-in classes below are what such a class subclasses; the
custom-policy shim's tracker and domain views hold them too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chatbot.errors import ConfigError
from chatbot.rasa_compat.loading import module_digest, project_class

logger = logging.getLogger(__name__)

__all__ = [
    "SLOT_NAMES",
    "AnySlot",
    "BooleanSlot",
    "CategoricalSlot",
    "FloatSlot",
    "InvalidSlotConfigError",
    "InvalidSlotTypeException",
    "ListSlot",
    "Slot",
    "SlotKind",
    "TextSlot",
    "bool_from_any",
    "slot_for",
]

OTHER_VALUE = "__other__"  # Rasa's DEFAULT_CATEGORICAL_SLOT_VALUE


class InvalidSlotTypeException(Exception):
    """A slot type that is neither built in nor importable."""


class InvalidSlotConfigError(ValueError):
    """A slot whose settings do not fit its type."""


class Slot:
    """A slot: its name, mappings, value and how the policies see the value (``as_feature``).

    A subclass says how in ``_as_feature`` (a list of ``_feature_dimensionality()`` numbers), or
    overrides ``as_feature`` and ``feature_dimensionality`` themselves, as Rasa's docs show."""

    type_name: str | None = None

    def __init__(
        self,
        name: str,
        mappings: list[dict[str, Any]] | None = None,
        initial_value: Any = None,
        value_reset_delay: int | None = None,
        influence_conversation: bool = True,
    ) -> None:
        self.name = name
        self.mappings = list(mappings or [])
        self._value = initial_value
        self.initial_value = initial_value
        self._value_reset_delay = value_reset_delay
        self.influence_conversation = influence_conversation
        self._has_been_set = False

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value
        self._has_been_set = True

    @property
    def has_been_set(self) -> bool:
        return self._has_been_set

    def feature_dimensionality(self) -> int:
        """How many numbers ``as_feature`` gives (0 where the slot does not influence the
        conversation)."""
        return self._feature_dimensionality() if self.influence_conversation else 0

    def _feature_dimensionality(self) -> int:
        return 1

    def has_features(self) -> bool:
        return self.feature_dimensionality() != 0

    def as_feature(self) -> list[float]:
        return self._as_feature() if self.influence_conversation else []

    def _as_feature(self) -> list[float]:
        raise NotImplementedError(
            f"slot '{self.name}': a slot class must say how its value is a feature "
            "(_as_feature or as_feature)"
        )

    def value_reset_delay(self) -> int | None:
        return self._value_reset_delay

    def reset(self) -> None:
        self.value = self.initial_value
        self._has_been_set = False

    def persistence_info(self) -> dict[str, Any]:
        cls = type(self)
        return {
            "type": self.type_name
            if cls.__module__ == __name__
            else f"{cls.__module__}.{cls.__qualname__}",
            "initial_value": self.initial_value,
            "influence_conversation": self.influence_conversation,
            "mappings": self.mappings,
        }

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.value})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}({self.name}: {self.value})>"


class TextSlot(Slot):
    type_name = "text"

    def _as_feature(self) -> list[float]:
        return [1.0 if self.value is not None else 0.0]


class ListSlot(Slot):
    type_name = "list"

    def _as_feature(self) -> list[float]:
        try:
            return [1.0 if self.value is not None and len(self.value) > 0 else 0.0]
        except TypeError:
            return [0.0]


class AnySlot(Slot):
    type_name = "any"

    def __init__(
        self,
        name: str,
        mappings: list[dict[str, Any]] | None = None,
        initial_value: Any = None,
        value_reset_delay: int | None = None,
        influence_conversation: bool = False,
    ) -> None:
        if influence_conversation:
            raise InvalidSlotConfigError(f"slot '{name}' of type any cannot be featurized")
        super().__init__(name, mappings, initial_value, value_reset_delay, False)

    def _as_feature(self) -> list[float]:
        return []


def bool_from_any(x: Any) -> bool:
    """Rasa's reading of a value as a truth value (ValueError / TypeError where it is none)."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int | float):
        return bool(x == 1.0)
    if isinstance(x, str):
        if x.isnumeric():
            return float(x) == 1.0
        if x.strip().lower() in ("true", "false"):
            return x.strip().lower() == "true"
        raise ValueError(f"cannot read {x!r} as true or false")
    raise TypeError(f"cannot read a {type(x).__name__} as true or false")


class BooleanSlot(Slot):
    type_name = "bool"

    def _as_feature(self) -> list[float]:
        if self.value is None:
            return [0.0, 0.0]
        try:
            return [1.0, float(bool_from_any(self.value))]
        except (TypeError, ValueError):
            return [0.0, 0.0]

    def _feature_dimensionality(self) -> int:
        return 2


class FloatSlot(Slot):
    type_name = "float"

    def __init__(
        self,
        name: str,
        mappings: list[dict[str, Any]] | None = None,
        initial_value: float | None = None,
        value_reset_delay: int | None = None,
        max_value: float = 1.0,
        min_value: float = 0.0,
        influence_conversation: bool = True,
    ) -> None:
        super().__init__(name, mappings, initial_value, value_reset_delay, influence_conversation)
        if min_value >= max_value:
            raise InvalidSlotConfigError(
                f"float slot '{name}': min_value ({min_value}) must be under max_value "
                f"({max_value})"
            )
        self.max_value = max_value
        self.min_value = min_value

    def _as_feature(self) -> list[float]:
        try:
            capped = max(self.min_value, min(self.max_value, float(self.value)))
        except (TypeError, ValueError):
            return [0.0, 0.0]
        return [1.0, (capped - self.min_value) / (self.max_value - self.min_value)]

    def _feature_dimensionality(self) -> int:
        return 2

    def persistence_info(self) -> dict[str, Any]:
        info = super().persistence_info()
        return {**info, "max_value": self.max_value, "min_value": self.min_value}


class CategoricalSlot(Slot):
    type_name = "categorical"

    def __init__(
        self,
        name: str,
        mappings: list[dict[str, Any]] | None = None,
        values: Sequence[Any] | None = None,
        initial_value: Any = None,
        value_reset_delay: int | None = None,
        influence_conversation: bool = True,
    ) -> None:
        super().__init__(name, mappings, initial_value, value_reset_delay, influence_conversation)
        self.values = [str(v).lower() for v in values or () if v is not None]

    def add_default_value(self) -> None:
        if OTHER_VALUE not in self.values:
            self.values.append(OTHER_VALUE)

    def _as_feature(self) -> list[float]:
        features = [0.0] * len(self.values)
        if self.value is None:
            return features
        text = str(self.value).lower()
        if text in self.values:
            features[self.values.index(text)] = 1.0
        elif OTHER_VALUE in self.values:
            features[self.values.index(OTHER_VALUE)] = 1.0
        return features

    def _feature_dimensionality(self) -> int:
        return len(self.values)

    def persistence_info(self) -> dict[str, Any]:
        values = [v for v in self.values if v != OTHER_VALUE]
        return {**super().persistence_info(), "values": values}


BUILT_IN: dict[str, type[Slot]] = {
    str(cls.type_name): cls
    for cls in (TextSlot, BooleanSlot, CategoricalSlot, FloatSlot, ListSlot, AnySlot)
}
# What ``rasa.shared.core.slots`` holds where we provide it.
SLOT_NAMES = (
    "Slot",
    *(cls.__name__ for cls in BUILT_IN.values()),
    "InvalidSlotTypeException",
    "InvalidSlotConfigError",
    "bool_from_any",
)


def slot_for(type_name: str, name: str, value: Any = None, **settings: Any) -> Slot:
    """An instance of the built-in class of ``type_name`` (text's for one it does not know),
    holding ``value``: what the custom-policy shim's tracker and domain views show."""
    cls = BUILT_IN.get(type_name, TextSlot)
    if cls is AnySlot:
        settings["influence_conversation"] = False
    try:
        made = cls(name, **settings)
    except (InvalidSlotConfigError, TypeError):
        made = cls(name)
    made._value = value
    made._has_been_set = value is not None
    return made


class SlotKind:
    """A project's slot class (``type: module.Class``) for one slot of a domain: imported once,
    one instance of it, and the features of a value as the policies see them (a tuple of the
    class's numbers, None where every one is zero: Rasa leaves such a slot out of the state).

    Pickled (training's second process), it keeps what it needs to import the class again there.
    """

    def __init__(
        self,
        path: str,
        slot: str,
        settings: Mapping[str, Any],
        folders: Sequence[Path] = (),
    ) -> None:
        self.path = path
        self.slot = slot
        self.settings = dict(settings)
        self.folders = [Path(f) for f in folders]
        self._instance: Slot | None = None
        self._lock = threading.Lock()
        self._failed = False
        self.instance()  # imported and made now: every error at load, not in a conversation
        self.dimension = self._dimension()
        self.base_type = _base_type(type(self.instance()))

    def instance(self) -> Slot:
        """The slot's instance (made where it is not yet: ``ConfigError`` where that fails)."""
        if self._instance is None:
            cls = project_class(
                self.path,
                f"slot '{self.slot}'",
                self.folders,
                "rasa.shared.core.slots.Slot",
                "a slot class",
            )
            try:
                self._instance = cls(self.slot, **self.settings)
            except Exception as exc:
                raise ConfigError(
                    f"slot '{self.slot}': {self.path}({self._arguments()}) failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        return self._instance

    def _arguments(self) -> str:
        return ", ".join([repr(self.slot), *(f"{k}={v!r}" for k, v in self.settings.items())])

    def _dimension(self) -> int:
        made = self.instance()
        try:
            dimension = made.feature_dimensionality()
        except Exception as exc:
            raise ConfigError(
                f"slot '{self.slot}': {self.path}.feature_dimensionality() failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 0:
            raise ConfigError(
                f"slot '{self.slot}': {self.path}.feature_dimensionality() must be a whole "
                f"number of at least 0, not {dimension!r}"
            )
        return dimension

    def features(self, value: Any) -> tuple[float, ...] | None:
        """``as_feature()`` of the slot holding ``value``, as a tuple; None where it is all
        zeros, and where the class fails (logged with its traceback once) or gives something
        that is not ``dimension`` numbers (logged)."""
        with self._lock:  # one instance: its value is set, then read
            made = self.instance()
            try:
                made.value = value
                raw = made.as_feature()
            except Exception:
                self._said("failed", exc_info=not self._failed)
                return None
        try:
            numbers = tuple(float(x) for x in raw)
        except (TypeError, ValueError):
            self._said(f"gave {raw!r}, not a list of numbers")
            return None
        if len(numbers) != self.dimension:
            self._said(
                f"gave {len(numbers)} numbers, not feature_dimensionality()'s {self.dimension}"
            )
            return None
        return numbers if any(numbers) else None

    def _said(self, what: str, exc_info: bool = False) -> None:
        logger.error(
            "slot '%s': %s.as_feature() %s; the policies see the slot as unset",
            self.slot,
            self.path,
            what,
            exc_info=exc_info,
        )
        self._failed = True

    def holding(self, value: Any) -> Slot:
        """A new instance of the class holding ``value`` (the custom-policy shim's views)."""
        made = type(self.instance())(self.slot, **self.settings)
        made.value = value
        return made

    def source_digest(self) -> str:
        """A digest of the module that defines the class (for training's fingerprints)."""
        try:
            return module_digest(type(self.instance()))
        except OSError:
            return f"unreadable:{self.path}"

    def __getstate__(self) -> dict[str, Any]:
        """Without the instance and the lock: the class is imported again where it is first
        used (training's second process)."""
        state = {**self.__dict__, "_instance": None, "_failed": False}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _base_type(cls: type[Any]) -> str:
    """The built-in type a slot class derives from (its values are handled as that type's:
    a list slot's entities all kept, say), text's where it derives from ``Slot`` alone."""
    for parent in cls.__mro__:
        type_name = getattr(parent, "type_name", None)
        if isinstance(type_name, str) and type_name in BUILT_IN and type_name != "any":
            return type_name
    return "text"
