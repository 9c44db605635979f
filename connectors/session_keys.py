"""Signed session keys for the browser chat: knowing a conversation's id is not enough to join it.

A session key is ``<conversation id>.<token>``: the conversation id is 32 random hex digits, the
token is HMAC-SHA256 of it under the server's secret (base64url, no padding). The server hands a
key out in ``session_confirm`` and accepts it back in ``session_request``; the conversation store,
logs and the HTTP API only ever see the conversation id, which cannot be turned into a key without
the secret. Keys do not expire: a conversation ends when its session does.

Where credentials.yml gives no ``session_secret``, the server keeps the one it made in
``.chatbot/socketio_secret`` of the project (beside the default conversation store; only its owner
may read it), so that the keys browsers hold stay good across restarts and deploys: a widget
that keeps its key (rasa-webchat's session persistence) goes on with its conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

SECRET_FILE = "socketio_secret"

_PURPOSE = b"chatbot/socketio-session/v1\x00"


class SessionKeys:
    def __init__(self, secret: str | bytes | None = None) -> None:
        """``secret`` from credentials.yml; None: a random one, valid until the server stops."""
        if secret is None:
            secret = secrets.token_bytes(32)
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if not self._secret:
            raise ValueError("the session secret is empty")

    def issue(self) -> tuple[str, str]:
        """A new conversation id and its session key."""
        conversation_id = secrets.token_hex(16)
        return conversation_id, f"{conversation_id}.{self._token(conversation_id)}"

    def conversation_of(self, key: object) -> str | None:
        """The conversation id a session key was issued for, or None for anything else."""
        if not isinstance(key, str) or len(key) > 200 or not key.isascii():
            return None
        conversation_id, dot, token = key.rpartition(".")
        if not dot or not conversation_id:
            return None
        if not hmac.compare_digest(token.encode(), self._token(conversation_id).encode()):
            return None
        return conversation_id

    def _token(self, conversation_id: str) -> str:
        digest = hmac.new(self._secret, _PURPOSE + conversation_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def kept_secret(folder: Path) -> bytes | None:
    """The session secret kept in ``folder`` (made there, readable by its owner only, on first
    use), or None where it can be neither read nor made (one warning: keys then last until the
    server stops). Several processes starting at once agree: the file appears whole or not at
    all."""
    path = folder / SECRET_FILE
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{SECRET_FILE}.{os.getpid()}"
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(32) + "\n")
            try:
                os.link(partial, path)  # fails where another process made it first
            except FileExistsError:
                pass
            finally:
                partial.unlink()
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning(
            "socketio: cannot keep the session secret in %s (%s): session keys last until the "
            "server stops; set session_secret in credentials.yml",
            path,
            exc,
        )
        return None
    if len(secret) < 32:
        logger.warning(
            "socketio: %s holds no session secret (under 32 characters): session keys last "
            "until the server stops; delete the file to have a new one made",
            path,
        )
        return None
    return secret.encode()
