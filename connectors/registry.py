"""The channels ``chatbot run`` can mount, by their credentials.yml name (an explicit table).

A channel's module is imported only when a credentials.yml block mounts it, so a bot served on the
REST channel alone does not pay for the other channels' imports at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module

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


def not_served(name: str) -> str | None:
    """Why a credentials.yml block is left unmounted: a Rasa channel we do not serve, or a custom
    connector's ``module.Class`` path (Rasa's connectors are Sanic blueprints); None otherwise."""
    if name in RASA_ONLY_CHANNELS:
        return f"Rasa's '{name}' channel is not served by chatbot run"
    if "." in name:
        return f"'{name}' is a custom Rasa connector (a Sanic class), which chatbot run cannot load"
    return None


def channel_class(name: str) -> type[InputChannel] | None:
    """The channel class of a credentials.yml block name; None for a name not in ``CHANNELS``."""
    where = CHANNELS.get(name)
    if where is None:
        return None
    module, _, attribute = where.partition(":")
    found: type[InputChannel] = getattr(import_module(module), attribute)
    return found


def channel_of(block: EndpointBlock) -> InputChannel | None:
    """The channel a credentials.yml block configures, built from its settings; None, with a
    warning, for a block that is skipped (``not_served``); a ConfigError naming the file and
    line for an unknown channel or a bad setting. A key that a channel with ``known_keys``
    (REST, callback) does not read is named in a warning with the file and line: Rasa ignores
    it, and a misspelt ``timeout`` would otherwise pass unseen."""
    where = block.origin.prefix
    found = channel_class(block.name)
    skipped = not_served(block.name) if found is None else None
    if skipped is not None:
        logger.warning("%s%s; its block is skipped", where, skipped)
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
        found = channel_class(block.name)
        if found is None:
            continue
        try:
            entries.append(found.from_credentials(dict(block.params)).entry())
        except ConfigError:
            continue  # a worker says why
    return entries
