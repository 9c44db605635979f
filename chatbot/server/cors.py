"""CORS for browsers calling the server from other origins (``--cors "*"`` or a list of origins)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"


def cors_middleware(origins: Iterable[str]) -> Middleware:
    allowed = frozenset(origins)

    def allows(origin: str | None) -> bool:
        return origin is not None and ("*" in allowed or origin in allowed)

    def add_headers(headers: MutableMapping[str, str], origin: str) -> None:
        if "*" in allowed:
            headers["Access-Control-Allow-Origin"] = "*"
        else:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
            headers["Vary"] = "Origin"

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not allows(origin):
            return await handler(request)
        assert origin is not None
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            preflight = web.Response(status=204)
            add_headers(preflight.headers, origin)
            preflight.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            preflight.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            preflight.headers["Access-Control-Max-Age"] = "600"
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            add_headers(exc.headers, origin)
            raise
        add_headers(response.headers, origin)
        return response

    return cors
