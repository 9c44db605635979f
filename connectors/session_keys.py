"""Signed session keys for the browser chat: knowing a conversation's id is not enough to join it.

A session key is ``<conversation id>.<token>``: the conversation id is 32 random hex digits, the
token is HMAC-SHA256 of it under the server's secret (base64url, no padding). The server hands a
key out in ``session_confirm`` and accepts it back in ``session_request``; the conversation store,
logs and the HTTP API only ever see the conversation id, which cannot be turned into a key without
the secret. Keys do not expire: a conversation ends when its session does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

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
