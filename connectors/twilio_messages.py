"""Bot messages (Rasa's REST format) as Twilio Messages API requests (SMS and WhatsApp), as
Rasa's Twilio channel sends them.

Texts go in parts split at blank lines (as Rasa) and at 1,600 characters (Twilio's limit of a
message body). Buttons have no place in an SMS: they are listed under the text as ``1: Yes``, and
the user's next message "1" (or a button's title) is read as that button's payload
(``connectors.numbered_buttons``); Rasa sent each button as a message of its own with its payload
showing. An image is a media attachment (``MediaUrl``: MMS in an SMS conversation, as Rasa sends
it; where the number cannot take MMS, Twilio's MMS converter sends a link). ``custom`` is a
Messages API request of its own, its keys in the API's names (``Body``, ``MediaUrl``,
``ContentSid``) or in the Python client's that Rasa users write (``body``, ``media_url``,
``from_``), with ``To`` and ``From`` (or a messaging service) filled in as Rasa fills them.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.numbered_buttons import numbered_parts

MAX_BODY = 1600  # characters in one message's body
WHATSAPP = "whatsapp:"


def api_name(key: str) -> str:
    """A Python client's keyword (``media_url``, ``from_``) as the Messages API's field
    (``MediaUrl``, ``From``); a name already in the API's form stays as it is."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        return key
    return "".join(part.capitalize() for part in key.strip("_").split("_"))


def twilio_requests(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Messages API requests (fields besides ``To`` and ``From``) of one bot message."""
    out: list[dict[str, Any]] = []
    parts = numbered_parts(message, MAX_BODY)
    out.extend({"Body": part} for part in parts)
    image = message.get("image")
    if isinstance(image, str) and image:
        out.append({"MediaUrl": image})
    attachment = message.get("attachment")
    if attachment:
        out.append({"Body": f"Attachment: {attachment}"[:MAX_BODY]})
    custom = message.get("custom")
    if isinstance(custom, dict) and custom:
        out.append({api_name(str(k)): v for k, v in custom.items()})
    return out
