"""External events: an intent the bot acts on as if the user had sent it
(``POST /conversations/{id}/trigger_intent``, a due reminder).

The user event is Rasa's ``UserUttered.create_external``: the text ``EXTERNAL: <intent>``, the
intent's name alone (no confidence, no ranking: no NLU read it, and our policies featurize an
intent without a ranking as that intent for sure), ``{"is_external": true}`` as its metadata, no
message id, and the conversation's latest input channel, so an external event neither moves the
conversation to another channel nor passes for a message of the user's.
"""

from __future__ import annotations

from typing import Any

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event
from chatbot.conversation.messages import EXTERNAL_MESSAGE_PREFIX

IS_EXTERNAL = "is_external"


def external_user_event(
    intent: str, entities: list[dict[str, Any]], input_channel: str | None
) -> Event:
    parse_data: dict[str, Any] = {"intent": {"name": intent}, "entities": entities}
    return ev.user(
        f"{EXTERNAL_MESSAGE_PREFIX}{intent}",
        parse_data,  # type: ignore[arg-type]
        input_channel=input_channel,
        metadata={IS_EXTERNAL: True},
    )


def latest_input_channel(conversation: Conversation) -> str | None:
    """The input channel of the conversation's latest user message (Rasa's
    ``get_latest_input_channel``)."""
    latest = conversation.latest_user_event() or {}
    channel = latest.get("input_channel")
    return channel if isinstance(channel, str) else None
