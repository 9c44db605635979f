"""Checking a platform's signed webhook tokens (Bot Framework, Google Chat): RS256 JWTs whose
key the platform publishes by key id.

``PublishedKeys`` holds the published keys: fetched on first use, again once older than their
``max_age``, and for a key id not seen yet at most every ``min_refresh`` seconds (a stream of
forged key ids cannot make the server fetch without end). ``verified_claims`` checks a
``Authorization: Bearer`` header against them. PyJWT (with cryptography) is imported when a
token is first checked, not when the server starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

CLOCK_SKEW = 300.0  # seconds of leeway on exp and nbf
MIN_REFRESH = 300.0


class NotAuthorized(Exception):
    """Why a token was refused (logged, never told to the caller)."""


class PublishedKeys:
    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        *,
        max_age: float,
        min_refresh: float = MIN_REFRESH,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self.max_age = max_age
        self.min_refresh = min_refresh
        self._keys: dict[str, Any] = {}
        self.fetched = 0.0  # time.monotonic() of the last fetch that worked; 0: none yet
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Any:
        """The key with id ``kid``; NotAuthorized where the platform has published none."""
        async with self._lock:
            now = time.monotonic()
            stale = now - self.fetched > self.max_age
            unknown = kid not in self._keys and now - self.fetched > self.min_refresh
            if not self.fetched or stale or unknown:
                try:
                    self._keys = await self._fetch()
                    self.fetched = time.monotonic()
                except Exception as error:  # the keys held stay; logged, the token refused
                    logger.error("%s: could not fetch the signing keys (%s)", self.name, error)
        key = self._keys.get(kid)
        if key is None:
            raise NotAuthorized(f"key id {kid!r} is not among the published keys")
        return key


async def verified_claims(
    header: str | None,
    keys: PublishedKeys,
    *,
    audience: str,
    issuer: str,
    public_key: Callable[[Any], Any],
    check_key: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """The claims of the RS256 JWT in ``header`` (``Bearer <jwt>``): signed with the published
    key its ``kid`` names (``public_key`` makes the key PyJWT verifies with of the published
    entry; ``check_key`` may refuse the entry), for ``audience``, by ``issuer``, with ``exp``,
    not expired. NotAuthorized otherwise."""
    import jwt

    if not header or not header.startswith("Bearer "):
        raise NotAuthorized("no Bearer token")
    token = header[len("Bearer ") :].strip()
    try:
        unverified = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise NotAuthorized(f"not a JWT ({error})") from None
    kid = unverified.get("kid")
    if unverified.get("alg") != "RS256" or not isinstance(kid, str):
        raise NotAuthorized(f"algorithm {unverified.get('alg')!r}, key id {kid!r}")
    entry = await keys.get(kid)
    if check_key is not None:
        check_key(entry)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key(entry),
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iss", "aud"]},
        )
    except (jwt.PyJWTError, ValueError) as error:
        raise NotAuthorized(str(error)) from None
    return claims
