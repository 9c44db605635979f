"""What a Rasa 3 custom connector imports from Rasa, for projects served without Rasa:
``rasa.core.channels.channel`` (``InputChannel``, ``OutputChannel``, ``UserMessage``,
``CollectingOutputChannel``, ``QueueOutputChannel``), ``rasa.core.channels.rest`` (``RestInput``)
and ``rasa.utils.endpoints`` (``bool_arg``, ``default_arg``). ``install`` makes those module names
importable, only where no ``rasa`` package is installed and only once a credentials.yml block
names a connector that needs them; Sanic (a dependency of rasa-sdk) serves the blueprints.
``connectors.sanic_bridge`` mounts the connectors."""

from __future__ import annotations

import sys

from chatbot.rasa_compat import package, provide, provide_components, rasa_installed

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
    """Make ``PROVIDED`` importable, and the names custom components and policies import
    (``chatbot.rasa_compat.provide_components``: a connector may import Rasa's events too);
    False (nothing done) where a ``rasa`` package other than ours is there, or ours already
    provides them all. Raises ModuleNotFoundError where Sanic is not installed."""
    if rasa_installed():
        return False
    made = provide_components()
    if "rasa.core.channels.channel" in sys.modules:
        return made
    import sanic  # noqa: F401  (the connectors' blueprints are Sanic's)

    from connectors.rasa_compat import channel, endpoints, rest

    channels = package("rasa.core.channels")
    for exported in ("InputChannel", "OutputChannel", "UserMessage", "CollectingOutputChannel"):
        setattr(channels, exported, getattr(channel, exported))
    channels.RestInput = rest.RestInput  # type: ignore[attr-defined]
    return provide(
        {
            "rasa.core.channels": channels,
            "rasa.core.channels.channel": channel,
            "rasa.core.channels.rest": rest,
            "rasa.utils.endpoints": endpoints,
        }
    )


def is_rasa_connector(found: type) -> bool:
    """Whether a class is a Rasa connector: it has Rasa's ``name()`` and ``blueprint()``."""
    return callable(getattr(found, "blueprint", None)) and callable(getattr(found, "name", None))
