"""``GET /health``: whether a model is loaded and the conversation store, the lock store and the
action server answer: the server's readiness (``GET /`` says hello while the process lives, as
Rasa's: a liveness check).

200 ``{"status": "ok", "components": {...}}`` when a model is loaded and every configured
component answers, else 503 with ``"status": "unavailable"``; ``model`` says ``ok`` or
``not_loaded`` (a server waiting for its model server's first model, or after ``DELETE
/model``: every message would be a 503), each other component ``ok``, ``unavailable``,
``circuit_open`` or ``not_configured``. Each check is given ``CHECK_TIMEOUT`` seconds.

Where the model's pipeline has a DucklingEntityExtractor, ``duckling`` says whether its server
answers. Without it messages are still answered, only without its entities: an unavailable
Duckling makes the status ``degraded`` with a 200, so that a load balancer does not take the
server out of service for what it cannot mend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from chatbot.server.keys import AGENT

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0
OPTIONAL = ("duckling",)  # without it answers go on, degraded


async def _answers(ping: Awaitable[bool]) -> bool:
    try:
        return bool(await asyncio.wait_for(ping, CHECK_TIMEOUT))
    except asyncio.TimeoutError:
        return False
    except Exception:  # a ping must not take the health check down with it
        logger.debug("health check failed", exc_info=True)
        return False


async def health(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    executor = agent.action_executor
    checks: dict[str, Awaitable[bool]] = {"store": agent.store.ping()}
    lock_ping = getattr(agent.locks, "ping", None)
    if lock_ping is not None:
        checks["lock_store"] = lock_ping()
    executor_ping = getattr(executor, "ping", None)
    if executor_ping is not None:
        checks["action_server"] = executor_ping()
    duckling = agent.model.duckling if agent.is_ready else None
    if duckling is not None:
        checks["duckling"] = agent.duckling.ping(duckling)
    results = await asyncio.gather(*(_answers(c) for c in checks.values()))
    components: dict[str, dict[str, Any]] = {
        "model": {"status": "ok" if agent.is_ready else "not_loaded"},
        **{
            name: {"status": "ok" if ok else "unavailable"}
            for name, ok in zip(checks, results, strict=True)
        },
    }
    if executor is None:
        components["action_server"] = {"status": "not_configured"}
    else:
        breaker = getattr(executor, "breaker", None)
        if breaker is not None and breaker.is_open():
            components["action_server"]["status"] = "circuit_open"
    healthy = all(
        c["status"] in ("ok", "not_configured")
        for name, c in components.items()
        if name not in OPTIONAL
    )
    status = "ok" if healthy else "unavailable"
    if healthy and any(
        components[name]["status"] != "ok" for name in OPTIONAL if name in components
    ):
        status = "degraded"
    return web.json_response(
        {"status": status, "components": components}, status=200 if healthy else 503
    )
