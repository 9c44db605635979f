"""The aiohttp application of ``chatbot run``, made by one factory that the tests use too.

A composition root: it builds the agent from a model file and the project's endpoints.yml (store,
locks) and mounts the channels (importing ``connectors`` lazily).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from chatbot.agent import Agent, TrainedModel, __version__, latest_model
from chatbot.errors import ChatbotError, StoreUnavailable
from chatbot.project.endpoints import Endpoints

logger = logging.getLogger(__name__)

AGENT = web.AppKey("agent", Agent)


@dataclass
class ServerSettings:
    project_dir: Path = Path(".")
    model_path: Path | None = None
    host: str = "0.0.0.0"
    port: int = 5005
    # Where the embedded SQLite store lives when endpoints.yml names no tracker_store.
    sqlite_path: Path | None = None
    channels: tuple[str, ...] = field(default=("rest",))


def read_endpoints(project_dir: Path) -> Endpoints:
    from chatbot.project.endpoints_reader import read_endpoints as read

    path = project_dir / "endpoints.yml"
    return read(path) if path.is_file() else Endpoints()


def build_agent(settings: ServerSettings) -> Agent:
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.store.factory import create_lock_store, create_store

    model_path = settings.model_path or latest_model(settings.project_dir / "models")
    model = TrainedModel.from_file(model_path)
    endpoints = read_endpoints(settings.project_dir)
    sqlite_path = settings.sqlite_path or settings.project_dir / ".chatbot" / "conversations.db"
    store = create_store(endpoints.tracker_store, default_sqlite_path=sqlite_path)
    locks = create_lock_store(endpoints.lock_store)
    executor = create_action_executor(endpoints.action_endpoint, settings.project_dir)
    return Agent(model, store=store, locks=locks, action_executor=executor)


@web.middleware
async def errors_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Map our errors to HTTP statuses in one place; never a traceback to a client."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreUnavailable as exc:
        logger.error("store unavailable: %s", exc)
        return web.json_response(
            {"error": "the conversation store is unavailable, try again", "status": 503}, status=503
        )
    except ChatbotError as exc:
        logger.error("request failed: %s", exc)
        return web.json_response({"error": str(exc), "status": 500}, status=500)


def create_app(agent: Agent, settings: ServerSettings | None = None) -> web.Application:
    from connectors.registry import CHANNELS
    from connectors.webchat import register_chat_page

    settings = settings or ServerSettings()
    app = web.Application(middlewares=[errors_middleware], client_max_size=1024 * 1024)
    app[AGENT] = agent

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": __version__})

    register_chat_page(app)
    app.router.add_get("/version", version)
    for name in settings.channels:
        CHANNELS[name]().register(app, lambda: app[AGENT])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await app[AGENT].store.start()
        yield
        await app[AGENT].close()
        await app[AGENT].locks.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def serve(settings: ServerSettings) -> None:
    agent = build_agent(settings)
    app = create_app(agent, settings)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"Bot '{settings.project_dir.resolve().name}' is up: http://{shown}:{settings.port} "
        "(REST: POST /webhooks/rest/webhook)",
        flush=True,
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
