"""The channels ``chatbot run`` can mount, by their credentials.yml name (an explicit table), and
custom channels, named by their ``module.Class`` path as Rasa's custom connectors are.

A channel's module is imported only when a credentials.yml block mounts it, so a bot served on the
REST channel alone does not pay for the other channels' imports at start.

A custom channel is a subclass of ``connectors.base.InputChannel`` in the project's own code: its
module is imported from the folder of credentials.yml (the project), as Rasa imports custom
connectors from the folder it runs in. A Rasa 3 custom connector (a Sanic class subclassing
``rasa.core.channels.channel.InputChannel``) is served too (``connectors.sanic_bridge``), with
the Rasa modules it imports provided where Rasa is not installed (``connectors.rasa_compat``); one
that imports more of Rasa than that, or needs Sanic where it is missing, is skipped with a warning,
and the other channels start.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from types import ModuleType

from chatbot.errors import ConfigError
from chatbot.project.endpoints import Credentials, EndpointBlock
from connectors.base import InputChannel

logger = logging.getLogger(__name__)

CHANNELS: dict[str, str] = {
    "rest": "connectors.rest:RestChannel",
    "socketio": "connectors.socketio:SocketIOChannel",
    "slack": "connectors.slack:SlackChannel",
    "telegram": "connectors.telegram:TelegramChannel",
    "facebook": "connectors.facebook:FacebookChannel",
    "twilio": "connectors.twilio:TwilioChannel",
    "botframework": "connectors.botframework:BotFrameworkChannel",
    "hangouts": "connectors.hangouts:HangoutsChannel",
    "twilio_voice": "connectors.twilio_voice:TwilioVoiceChannel",
    "webexteams": "connectors.webexteams:WebexChannel",
    "mattermost": "connectors.mattermost:MattermostChannel",
    "rocketchat": "connectors.rocketchat:RocketChatChannel",
    "callback": "connectors.callback:CallbackChannel",
}

# Rasa 3.x's other built-in channels: a credentials.yml may keep their blocks (``rasa:`` for
# Rasa X, reminderbot's); ``chatbot run`` does not serve them and says so.
RASA_ONLY_CHANNELS = frozenset(
    {
        "audiocodes",
        "cmdline",
        "rasa",
    }
)


# Where a custom channel's import fails for want of these, it is a Rasa connector.
_RASA_PACKAGES = ("rasa", "sanic")


def not_served(name: str) -> str | None:
    """Why a credentials.yml block of a built-in name is left unmounted: a Rasa channel we do not
    serve; None otherwise."""
    if name in RASA_ONLY_CHANNELS:
        return f"Rasa's '{name}' channel is not served by chatbot run"
    return None


def rasa_connector(name: str, why: str) -> str:
    return (
        f"'{name}' is a custom Rasa connector that chatbot run cannot serve: {why}; a custom "
        "channel of chatbot subclasses connectors.base.InputChannel"
    )


def _provide_rasa() -> bool:
    """Whether the Rasa modules a connector imports were made importable just now."""
    from connectors.rasa_compat import install

    try:
        return install()
    except ModuleNotFoundError:  # no Sanic
        return False


def _rasa_connector_module(name: str, module: str, missing: str) -> ModuleType | str:
    """The module of a Rasa connector whose import wanted ``missing`` (of Rasa or Sanic), imported
    again with Rasa's modules provided; or why it cannot be."""
    if missing.split(".")[0] == "sanic" or not _provide_rasa():
        from connectors.rasa_compat import SERVED

        return rasa_connector(
            name,
            f"it imports {missing}, which is not installed (chatbot provides "
            f"{', '.join(SERVED)}, and the rasa.engine, rasa.shared and rasa.nlu names of custom "
            "components and policies)",
        )
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in _RASA_PACKAGES:
            return _rasa_connector_module(name, module, exc.name or "")
        raise


def custom_channel_class(block: EndpointBlock) -> type[InputChannel] | str:
    """The ``InputChannel`` subclass a ``module.Class`` block names, imported from the folder of
    credentials.yml; or why it is skipped (a Rasa connector). A module that is missing or fails
    to import, or a name that is no class of it, is a ConfigError naming the file and line."""
    where, name = block.origin.prefix, block.name
    module, _, attribute = name.rpartition(".")
    if not all(part.isidentifier() for part in [*module.split("."), attribute]):
        raise ConfigError(f"{where}'{name}' is neither a channel nor a module.Class path")
    folder = Path(block.origin.file).resolve().parent if block.origin.file else Path.cwd()
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # after everything installed: nothing of it is shadowed
    try:
        try:
            imported: ModuleType | str = import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in _RASA_PACKAGES:
                raise
            imported = _rasa_connector_module(name, module, exc.name or "")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{where}custom channel '{name}': no module {exc.name!r} (looked in {folder})"
        ) from None
    except Exception as exc:  # the user's module failed to import
        raise ConfigError(
            f"{where}custom channel '{name}': importing {module} failed: {exc!r}"
        ) from None
    if isinstance(imported, str):
        return imported
    found = getattr(imported, attribute, None)
    if found is None:
        raise ConfigError(f"{where}custom channel '{name}': {module} has no {attribute!r}")
    if not isinstance(found, type):
        raise ConfigError(f"{where}custom channel '{name}' is no class but {type(found).__name__}")
    if not issubclass(found, InputChannel):
        from connectors.rasa_compat import is_rasa_connector
        from connectors.sanic_bridge import bridged

        if not is_rasa_connector(found):
            raise ConfigError(
                f"{where}custom channel '{name}' is neither a connectors.base.InputChannel "
                "subclass nor a Rasa connector (a class with name() and blueprint())"
            )
        try:
            return bridged(found)
        except ConfigError as exc:
            raise ConfigError(f"{where}custom channel '{name}': {exc}") from None
    if inspect.isabstract(found) or not isinstance(getattr(found, "name", None), str):
        raise ConfigError(
            f"{where}custom channel '{name}' must define 'name' (its routes are under "
            "/webhooks/<name>/) and implement register()"
        )
    return found


def channel_class(name: str) -> type[InputChannel] | None:
    """The channel class of a credentials.yml block name; None for a name not in ``CHANNELS``."""
    where = CHANNELS.get(name)
    if where is None:
        return None
    module, _, attribute = where.partition(":")
    found: type[InputChannel] = getattr(import_module(module), attribute)
    return found


def block_class(block: EndpointBlock) -> type[InputChannel] | str | None:
    """The channel class a credentials.yml block names (ours, or a custom ``module.Class``), why
    the block is skipped (``not_served``, a Rasa connector), or None for a name we do not know."""
    found = channel_class(block.name)
    if found is not None:
        return found
    skipped = not_served(block.name)
    if skipped is None and "." in block.name:
        return custom_channel_class(block)
    return skipped


def channel_of(block: EndpointBlock) -> InputChannel | None:
    """The channel a credentials.yml block configures, built from its settings; None, with a
    warning, for a block that is skipped (``not_served``); a ConfigError naming the file and
    line for an unknown channel or a bad setting. A key that a channel with ``known_keys``
    (REST, callback) does not read is named in a warning with the file and line: Rasa ignores
    it, and a misspelt ``timeout`` would otherwise pass unseen."""
    where = block.origin.prefix
    found = block_class(block)
    if isinstance(found, str):
        logger.warning("%s%s; its block is skipped", where, found)
        return None
    if found is None:
        raise ConfigError(
            f"{where}unknown channel '{block.name}' in the credentials; "
            f"known channels: {', '.join(sorted(CHANNELS))}"
        )
    if found.known_keys is not None:
        block.warn_unknown_keys(found.known_keys)
    try:
        return found.from_credentials(dict(block.params))
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def served_blocks(credentials: Credentials | None) -> dict[str, EndpointBlock]:
    """The credentials' channel blocks; the REST channel alone without a credentials.yml."""
    return dict(credentials.channels) if credentials else {"rest": EndpointBlock("rest", {})}


def channel_entries(blocks: Iterable[EndpointBlock]) -> list[str]:
    """Where clients reach the channels of ``blocks`` (``InputChannel.entry``), without mounting
    them or saying again what ``channel_of`` says when each server process mounts them: for the
    ready line of ``chatbot run --workers``, whose supervisor mounts nothing."""
    entries = []
    for block in blocks:
        try:
            found = block_class(block)
            if isinstance(found, type):
                entries.append(found.from_credentials(dict(block.params)).entry())
        except ConfigError:
            continue  # a worker says why
    return entries
