"""The rasa-sdk action call: ``{next_action, sender_id, tracker, domain, version}``."""

from __future__ import annotations

from typing import Any

from chatbot.actions.base import ActionContext
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_to_dict

# The Rasa version we speak the action server protocol of.
RASA_PROTOCOL_VERSION = "3.6.0"


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
