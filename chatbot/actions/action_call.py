"""The rasa-sdk action call: ``{next_action, sender_id, tracker, domain, version}``."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from chatbot.actions.base import ActionContext
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_to_dict


def _protocol_version() -> str:
    """The Rasa version an action call names: that of the rasa-sdk installed beside us (the
    action server's, most likely), as ``A.B.0``; rasa-sdk warns at every call whose Rasa
    version differs from its own in A.B. The protocol is the same across Rasa 3."""
    try:
        sdk = metadata.version("rasa-sdk")
    except metadata.PackageNotFoundError:
        return "3.6.0"
    parts = sdk.split(".")
    return f"{parts[0]}.{parts[1]}.0" if len(parts) >= 2 and parts[0] == "3" else "3.6.0"


# The Rasa version we speak the action server protocol of.
RASA_PROTOCOL_VERSION = _protocol_version()


class DomainJSONCache:
    """The domain in Rasa's format, computed once per domain object (it is sent with every call)."""

    def __init__(self) -> None:
        self._domain: Domain | None = None
        self._json: dict[str, Any] = {}

    def get(self, domain: Domain) -> dict[str, Any]:
        if self._domain is not domain:
            self._json = domain_to_dict(domain)
            self._domain = domain
        return self._json


def action_call(name: str, ctx: ActionContext, domain_json: dict[str, Any]) -> dict[str, Any]:
    return {
        "next_action": name,
        "sender_id": ctx.conversation.sender_id,
        "tracker": ctx.conversation.as_tracker(),
        "domain": domain_json,
        "version": RASA_PROTOCOL_VERSION,
    }
