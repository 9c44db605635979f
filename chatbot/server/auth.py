"""Who may call the HTTP API, as in Rasa.

- A token (``--auth-token``): sent as ``Authorization: Bearer <token>`` or as Rasa's
  ``?token=<token>``, compared in constant time. It grants everything.
- A JWT (``--jwt-secret``, ``--jwt-method``, default HS256) sent as ``Authorization: Bearer <jwt>``,
  with the payload ``{"user": {"username": ..., "role": ...}}``: the ``admin`` role may do
  everything, the ``user`` role only read and write its own conversation (username == conversation
  id). Only the configured algorithm is accepted; ``exp`` and ``nbf`` are checked when present.

With neither configured, the API is open (and the server listens on 127.0.0.1 only).
"""

from __future__ import annotations

import hmac
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatbot.server.errors import json_error

# PyJWT (with cryptography, some 50 ms to import) is imported where a JWT secret is configured,
# not by every server: startup stays about a second.

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Algorithms whose key is a shared secret; the others verify with a public key.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
SUPPORTED_ALGORITHMS = (
    *HMAC_ALGORITHMS,
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)


class Auth:
    def __init__(
        self, token: str | None = None, jwt_secret: str | None = None, jwt_method: str = "HS256"
    ) -> None:
        from chatbot.errors import ConfigError

        if jwt_method not in SUPPORTED_ALGORITHMS:
            raise ConfigError(
                f"JWT method {jwt_method!r} is not supported; use one of "
                f"{', '.join(SUPPORTED_ALGORITHMS)}"
            )
        if jwt_secret and jwt_method not in HMAC_ALGORITHMS and not _has_crypto():
            raise ConfigError(
                f"JWT method {jwt_method} needs the 'cryptography' package "
                "(pip install cryptography)"
            )
        if jwt_secret and jwt_method in HMAC_ALGORITHMS:
            bits = int(jwt_method[2:])
            if len(jwt_secret.encode()) * 8 < bits:
                logger.warning(
                    "the JWT secret is shorter than %d bits, the minimum for %s", bits, jwt_method
                )
        self._token = token.encode() if token else None
        self._jwt_key = jwt_secret or None
        self.jwt_method = jwt_method

    @property
    def enabled(self) -> bool:
        return self._token is not None or self._jwt_key is not None

    def check(self, request: web.Request, conversation_id: str | None = None) -> str | None:
        """The role the request may go on as: "token" (``--auth-token``), a JWT's "admin" or
        "user", None where the API is open; a 401 or 403 JSON error where it may not."""
        if not self.enabled:
            return None
        bearer = _bearer(request)
        if self._token is not None:
            for candidate in (request.query.get("token"), bearer):
                if candidate is not None and hmac.compare_digest(
                    candidate.encode(errors="replace"), self._token
                ):
                    return "token"
        if self._jwt_key is not None and bearer is not None:
            user = self._jwt_user(bearer)
            if user is not None:
                if _sufficient_scope(user, conversation_id):
                    return str(user["role"])
                raise json_error(403, "User has insufficient permissions.", "NotAuthorized")
        raise json_error(401, "User is not authenticated.", "NotAuthenticated")

    def _jwt_user(self, token: str) -> dict[str, Any] | None:
        import jwt
        from jwt.warnings import InsecureKeyLengthWarning

        if self._jwt_key is None:
            return None
        if not token.isascii():  # a JWT is base64url and dots; PyJWT cannot even encode some
            logger.debug("JWT rejected: not ASCII")
            return None
        try:
            with warnings.catch_warnings():
                # A short secret was reported once, at start-up.
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                payload = jwt.decode(
                    token,
                    self._jwt_key,
                    algorithms=[self.jwt_method],
                    options={"verify_aud": False},
                )
        except jwt.ExpiredSignatureError:
            raise json_error(401, "The token has expired.", "NotAuthenticated") from None
        except jwt.InvalidTokenError as exc:
            logger.debug("JWT rejected: %s", exc)
            return None
        user = payload.get("user") if isinstance(payload, dict) else None
        return user if isinstance(user, dict) else {}

    def protect(
        self,
        handler: Handler,
        *,
        scoped: bool = False,
        as_user: Callable[[web.Request], None] | None = None,
    ) -> Handler:
        """``handler`` behind this authentication; ``scoped``: the route's ``{conversation_id}``
        is one a ``user`` role may reach when it is its own; ``as_user``: called before the
        handler where a ``user`` role's JWT let the request in (it may raise)."""

        async def protected(request: web.Request) -> web.StreamResponse:
            conversation_id = request.match_info.get("conversation_id") if scoped else None
            if self.check(request, conversation_id) == "user" and as_user is not None:
                as_user(request)
            return await handler(request)

        return protected


def _has_crypto() -> bool:
    from jwt.algorithms import has_crypto

    return bool(has_crypto)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _sufficient_scope(user: dict[str, Any], conversation_id: str | None) -> bool:
    role = user.get("role")
    if role == "admin":
        return True
    if role == "user":
        username = user.get("username")
        return conversation_id is not None and username == conversation_id
    return False
