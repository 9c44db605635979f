"""What a Rasa 3 custom connector imports from Rasa, for projects served without Rasa:
``rasa.core.channels.channel`` (``InputChannel``, ``OutputChannel``, ``UserMessage``,
``CollectingOutputChannel``, ``QueueOutputChannel``), ``rasa.core.channels.rest`` (``RestInput``)
and ``rasa.utils.endpoints`` (``bool_arg``, ``default_arg``). ``install`` makes those module names
importable, only where no ``rasa`` package is installed and only once a credentials.yml block
names a connector that needs them; Sanic (a dependency of rasa-sdk) serves the blueprints.
``connectors.sanic_bridge`` mounts the connectors."""

from __future__ import annotations

import importlib.util
import sys
import types

# The modules a connector may import, and what of them we provide.
PROVIDED = (
    "rasa",
    "rasa.core",
    "rasa.core.channels",
    "rasa.core.channels.channel",
    "rasa.core.channels.rest",
    "rasa.utils",
    "rasa.utils.endpoints",
)


# What the provided modules hold, for messages.
SERVED = (
    "rasa.core.channels",
    "rasa.core.channels.channel",
    "rasa.core.channels.rest",
    "rasa.utils.endpoints",
)


def install() -> bool:
    """Make ``PROVIDED`` importable; False (nothing done) where a ``rasa`` package is there (Rasa
    itself, or this, already). Raises ModuleNotFoundError where Sanic is not installed."""
    if "rasa" in sys.modules or importlib.util.find_spec("rasa") is not None:
        return False
    import sanic  # noqa: F401  (the connectors' blueprints are Sanic's)

    from connectors.rasa_compat import channel, endpoints, rest

    modules: dict[str, types.ModuleType] = {}
    for name in ("rasa", "rasa.core", "rasa.core.channels", "rasa.utils"):
        package = types.ModuleType(name, "provided by chatbot for Rasa connectors")
        package.__path__ = []  # a package: its submodules below are found in sys.modules
        modules[name] = package
    channels = modules["rasa.core.channels"]
    for exported in ("InputChannel", "OutputChannel", "UserMessage", "CollectingOutputChannel"):
        setattr(channels, exported, getattr(channel, exported))
    channels.RestInput = rest.RestInput  # type: ignore[attr-defined]
    modules["rasa.core.channels.channel"] = channel
    modules["rasa.core.channels.rest"] = rest
    modules["rasa.utils.endpoints"] = endpoints
    for name in PROVIDED:
        sys.modules[name] = modules[name]
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, modules[name])
    return True


def is_rasa_connector(found: type) -> bool:
    """Whether a class is a Rasa connector: it has Rasa's ``name()`` and ``blueprint()``."""
    return callable(getattr(found, "blueprint", None)) and callable(getattr(found, "name", None))
