"""The aiohttp application of ``chatbot run``, made by one factory that the tests use too.

A composition root: it builds the agent from a model file and the project's endpoints.yml (store,
locks, custom actions, a model server to pull the model from), mounts the channels of
credentials.yml (importing ``connectors`` lazily), and adds ``/health``, ``/metrics`` and, with
``enable_api``, the HTTP API.

Shutdown (SIGTERM, SIGINT): the server stops accepting connections, finishes the messages in
flight (up to ``shutdown_timeout``), then closes the channels, the action client and the stores.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from chatbot.agent import Agent, TrainedModel, __version__, latest_model
from chatbot.conversation.events import Event
from chatbot.errors import ConfigError, ModelFileError, StoreUnavailable
from chatbot.file_input import kind_of
from chatbot.project.endpoints import Credentials, EndpointBlock, Endpoints
from chatbot.reminders import ReminderScheduler
from chatbot.server.api import register_conversation_routes
from chatbot.server.api_model import register_model_routes
from chatbot.server.auth import Auth
from chatbot.server.clients import TrustedProxies
from chatbot.server.cors import cors_middleware
from chatbot.server.errors import errors_middleware, response_deadline
from chatbot.server.gate import MessageGate
from chatbot.server.health import health
from chatbot.server.keys import (
    AGENT,
    AUTH,
    ENTRIES,
    GATE,
    METRICS,
    OUTPUTS,
    SETTINGS,
    WORKER_SYNC,
)
from chatbot.server.limits import RateLimiter
from chatbot.server.metrics import Metrics
from chatbot.server.model_pull import MODEL_PULLS, ModelPulls, ModelServer
from chatbot.server.outputs import deliver
from chatbot.server.settings import STORE_RETRY_S, ServerSettings
from chatbot.server.tls import server_ssl_context
from chatbot.store.locks import LockStore

logger = logging.getLogger(__name__)

__all__ = ["AGENT", "ServerSettings", "build_agent", "create_app", "serve"]


def read_endpoints(project_dir: Path, path: Path | None = None) -> Endpoints:
    """endpoints.yml (``path``, else the project's); no endpoints when the project has none."""
    from chatbot.project.endpoints_reader import read_endpoints as read

    _check_given(path, "endpoints")
    path = path or project_dir / "endpoints.yml"
    return read(path) if path.exists() else Endpoints()


def read_credentials(project_dir: Path, path: Path | None = None) -> Credentials | None:
    """credentials.yml (``path``, else the project's); None when there is none."""
    from chatbot.project.endpoints_reader import read_credentials as read

    _check_given(path, "credentials")
    path = path or project_dir / "credentials.yml"
    return read(path) if path.exists() else None


def _check_given(path: Path | None, what: str) -> None:
    """A file given on the command line must be there, and be a file (a named pipe passed
    silently as no file at all; its reader says what a device or a folder is)."""
    if path is not None and not path.exists():
        raise ConfigError(f"{path}: no such {what} file")
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: not a regular file but {kind_of(path)}")


def model_path_of(settings: ServerSettings) -> Path:
    return settings.model_path or latest_model(settings.project_dir / "models")


def build_agent(settings: ServerSettings) -> Agent:
    endpoints = read_endpoints(settings.project_dir, settings.endpoints_path)
    for block, why in endpoints.not_used():
        logger.warning("%s%s: %s; the block is ignored", block.origin.prefix, block.name, why)
    model = _local_model(settings, pulled=settings.model_server is not None)
    sqlite_path = settings.sqlite_path or settings.project_dir / ".chatbot" / "conversations.db"
    locks: LockStore | None = None
    if endpoints.lock_store is None and settings.worker is not None:
        from chatbot.store.file_lock import FileLockStore

        # `chatbot run --workers` on one machine: the workers' locks meet in a file.
        locks = FileLockStore(settings.worker.shared_dir / "conversations.lock")
    return agent_from_endpoints(
        model, endpoints, settings.project_dir, default_sqlite_path=sqlite_path, locks=locks
    )


def agent_from_endpoints(
    model: TrainedModel | None,
    endpoints: Endpoints,
    project_dir: Path,
    *,
    default_sqlite_path: Path | None,
    locks: LockStore | None = None,
) -> Agent:
    """An agent with endpoints.yml's conversation store (without a ``tracker_store`` block:
    SQLite at ``default_sqlite_path``, or memory where that is None), lock store (``locks``
    where given), action server, NLG server and event broker: the server's, the shell's."""
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.actions.nlg import create_nlg_client
    from chatbot.store.broker import create_event_broker
    from chatbot.store.factory import create_lock_store, create_store

    return Agent(
        model,
        store=create_store(endpoints.tracker_store, default_sqlite_path=default_sqlite_path),
        locks=locks if locks is not None else create_lock_store(endpoints.lock_store),
        action_executor=create_action_executor(endpoints.action_endpoint, project_dir),
        nlg=create_nlg_client(endpoints.get("nlg")),
        broker=create_event_broker(endpoints.get("event_broker")),
    )


def _local_model(settings: ServerSettings, *, pulled: bool) -> TrainedModel | None:
    """The model of ``--model``, else the newest in ``models/``. With a model server (``pulled``;
    ``resolve_settings`` reads it) there may be none: its model is pulled at startup."""
    started = time.perf_counter()
    try:
        path = model_path_of(settings)
    except ModelFileError as exc:
        if not pulled:
            raise
        logger.info("no local model (%s): the model server's model is awaited", exc)
        return None
    try:
        model = TrainedModel.from_file(path)
    except ModelFileError as exc:
        if not pulled:
            raise
        logger.warning("%s; the model server's model is awaited", exc)
        return None
    logger.debug("model loaded in %.2f s", time.perf_counter() - started)
    return model


def create_app(agent: Agent, settings: ServerSettings | None = None) -> web.Application:
    from connectors.webchat import register_chat_page

    settings = settings or ServerSettings()
    metrics = Metrics()
    middlewares = [metrics.middleware(), cors_middleware(settings.cors), errors_middleware]
    if math.isfinite(settings.response_timeout):
        middlewares.append(response_deadline(settings.response_timeout))
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    auth = Auth(settings.auth_token, settings.jwt_secret, settings.jwt_method)
    limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    client_limiter = RateLimiter(settings.client_rate_limit) if settings.client_rate_limit else None
    app[AGENT] = agent
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[AUTH] = auth
    app[GATE] = MessageGate(
        lambda: app[AGENT],
        metrics,
        limiter=limiter,
        client_limiter=client_limiter,
        proxies=TrustedProxies(settings.forwarded_allow_ips),
        max_message_chars=settings.max_message_chars,
        max_in_flight=settings.max_in_flight,
    )
    app[OUTPUTS] = {}
    reminders = ReminderScheduler(lambda cid, event: _fire_reminder(app, cid, event))

    async def run_reminders(app: web.Application) -> AsyncIterator[None]:
        # Only while the server runs: an application made and never started schedules nothing.
        agent.listeners.append(reminders.notice)
        yield
        agent.listeners.remove(reminders.notice)
        await reminders.close()

    metrics.watch_action_server(lambda: app[AGENT].action_executor)
    # First in, last out: the stores close after every channel has finished its messages.
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(run_reminders)  # stopped before the stores close
    # endpoints.yml's model server, or one that PUT /model names later: the first pull before
    # the server accepts connections, later ones in a task.
    app[MODEL_PULLS] = ModelPulls(app)
    if settings.model_server is not None:
        app[MODEL_PULLS].configure(settings.model_server)
    app.cleanup_ctx.append(app[MODEL_PULLS].lifecycle)
    app.on_shutdown.append(_announce_shutdown)
    if settings.worker is not None:
        _share_with_workers(app, settings)

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": __version__, "minimum_compatible_version": "0.1.0"})

    register_chat_page(app)
    app.router.add_get("/version", version)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics.handle)
    if settings.enable_api:
        # The file as given, or the newest of models/ that was loaded (Rasa: the model's file).
        served = agent.model.source if agent.is_ready else None
        model_file = str(settings.model_path) if settings.model_path else served
        register_model_routes(app, auth, model_file)
        register_conversation_routes(app, auth)
    app[ENTRIES] = mount_channels(app, settings.credentials)
    return app


def _share_with_workers(app: web.Application, settings: ServerSettings) -> None:
    """Under ``chatbot run --workers``: metrics and the served model shared with the others."""
    from chatbot.server.worker_sync import ModelPointer, WorkerSync

    assert settings.worker is not None
    pointer = ModelPointer.read(settings.worker.shared_dir)
    served = str(settings.model_path.resolve()) if settings.model_path else None
    # Started with model.json's model (``chatbot.server.workers``): it is served already.
    serving = pointer.id if pointer is not None and pointer.model_file == served else None
    sync = WorkerSync(app, settings.worker, serving)
    app[WORKER_SYNC] = sync
    app[METRICS].others = sync.others_metrics
    app.cleanup_ctx.append(sync.lifecycle)


def mount_channels(app: web.Application, credentials: Credentials | None) -> list[str]:
    """The channels of credentials.yml under ``/webhooks/<name>/`` (REST alone without one);
    where clients reach each of them (``InputChannel.entry``), for the ready line."""
    from connectors.registry import channel_of, served_blocks

    blocks = served_blocks(credentials)
    entries = []
    mounted: dict[str, str] = {}  # a channel's name -> the block that mounted it
    for name, block in blocks.items():
        channel = channel_of(block)
        if channel is None:
            continue
        if channel.name in mounted:  # a custom channel may take a name that is taken
            raise ConfigError(
                f"{block.origin.prefix}{name}: its channel's name '{channel.name}' is "
                f"{mounted[channel.name]}'s already (both would answer /webhooks/{channel.name}/)"
            )
        mounted[channel.name] = name
        channel.register(app, lambda: app[AGENT])
        app[METRICS].add_channels(name, channel.name)
        entries.append(channel.entry())
    if blocks and not entries:
        logger.warning("no channel of the credentials is mounted: add 'rest:' for the REST channel")
    return entries


async def _fire_reminder(app: web.Application, conversation_id: str, event: Event) -> None:
    fired = await app[AGENT].processor.fire_reminder(conversation_id, event)
    if fired is not None:
        await deliver(app, conversation_id, fired.channel, fired.result.messages(), fired.metadata)


async def _start_stores(agent: Agent, settings: ServerSettings) -> None:
    """Open the conversation store and the lock store. Required at start (``chatbot run``),
    each is tried again for ``settings.store_wait`` seconds (after 0.5 s, 1 s, 2 s, then every
    ``STORE_RETRY_S``), a warning naming what failed each time, before its StoreUnavailable
    stops the start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.store_wait
    lock_start = getattr(agent.locks, "start", None)  # an embedding app's own locks may lack it
    for start in (agent.store.start, *([lock_start] if lock_start is not None else [])):
        pause = 0.5
        while True:
            try:
                await start()
                break
            except StoreUnavailable as exc:
                if not settings.require_store_at_start:
                    logger.warning("%s; starting anyway, each message tries it again", exc)
                    break
                left = deadline - loop.time()
                if left <= 0:
                    raise
                pause = min(pause, left)
                logger.warning(
                    "%s; trying again in %.1f s (giving up in %.0f s: --wait-for-store)",
                    exc,
                    pause,
                    left,
                )
                await asyncio.sleep(pause)
                pause = min(2 * pause, STORE_RETRY_S)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    agent = app[AGENT]
    try:
        await _start_stores(agent, app[SETTINGS])
    except BaseException:
        # Nothing else is open yet; the caller (``serve``) prints the one line.
        await agent.close()
        await agent.locks.close()
        raise
    if agent.broker is not None:
        await agent.broker.start()
    yield
    executor = agent.action_executor
    close = getattr(executor, "close", None)
    if close is not None:
        await close()
    await agent.close()
    await agent.locks.close()


async def _announce_shutdown(app: web.Application) -> None:
    logger.info("shutting down: no new connections; finishing the messages in flight")
    _hold_further_signals()


class _MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a header past 8 KB, too many headers, a bad
    request line) as an ERROR with its traceback, the start of the offending header in it (a
    cookie, a token): any client could write one per request. The client gets its 400 all the
    same; the log gets one warning line, without what the client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import BadHttpMessage

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            record.msg = "a malformed HTTP request was refused with a 400 (%s)"
            record.args = (type(error).__name__,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


MALFORMED_REQUESTS = _MalformedRequests()


def _hold_further_signals() -> None:
    """Once the first SIGTERM or SIGINT began the shutdown, aiohttp would raise a second one
    in the middle of finishing the messages in flight: a traceback for each, each lost, exit
    status 1. A second SIGTERM (a supervisor repeating itself) is noted and changes nothing; a
    second SIGINT (Ctrl-C again) stops at once, as a kill does, without tracebacks: what was
    stored stays whole, the messages in flight are not answered."""
    loop = asyncio.get_running_loop()

    def term_again() -> None:
        logger.warning("already shutting down: finishing the messages in flight")

    def interrupt_again() -> None:
        logger.warning("stopping at once: the messages in flight are not answered")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(130)

    try:
        loop.add_signal_handler(signal.SIGTERM, term_again)
        loop.add_signal_handler(signal.SIGINT, interrupt_again)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread's loop
        pass


def resolve_settings(settings: ServerSettings) -> ServerSettings:
    """The settings with the project's credentials.yml and endpoints.yml's model server read,
    when not given."""
    if settings.credentials is None:
        settings.credentials = read_credentials(settings.project_dir, settings.credentials_path)
    if settings.connector is not None:
        # Rasa's --connector: that channel alone, with its block of the credentials if any.
        blocks = settings.credentials.channels if settings.credentials is not None else {}
        channel = blocks.get(settings.connector) or EndpointBlock(settings.connector, {})
        settings.credentials = Credentials({settings.connector: channel})
    if settings.model_server is None:
        block = read_endpoints(settings.project_dir, settings.endpoints_path).get("models")
        settings.model_server = ModelServer.from_block(block) if block is not None else None
    return settings


def serve(
    settings: ServerSettings,
    *,
    listen: Callable[[], socket.socket] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT: on ``settings``' host and port, or, in a worker of
    ``chatbot run --workers``, on the socket ``listen()`` gives once the bot is loaded
    (``on_ready`` is called once it accepts connections). Several workers wanted: their
    supervisor (``chatbot.server.workers``)."""
    started = time.perf_counter()
    if settings.worker is None:
        from chatbot.server.workers import serve_workers, workers_wanted

        count = workers_wanted(settings)
        if count > 1:
            serve_workers(settings, count)
            return
    torch = sys.modules.get("torch")  # models are served in numpy; custom code may use torch
    if settings.torch_threads is not None and torch is not None:
        torch.set_num_threads(settings.torch_threads)
    # The certificate is checked before anything else loads: a mistake there is found at once.
    ssl_context = server_ssl_context(
        settings.ssl_certificate, settings.ssl_keyfile, settings.ssl_ca_file, settings.ssl_password
    )
    scheme = "http" if ssl_context is None else "https"
    settings = resolve_settings(settings)
    agent = build_agent(settings)
    app = create_app(agent, settings)
    host = settings.effective_host()
    if listen is None:
        announce_listening(settings)
    name = bot_name(settings)

    def ready(*_: object) -> None:
        if on_ready is not None:
            on_ready()
            return
        # The channels mounted, not the REST channel that `--connector socketio` leaves out.
        entries: list[str] = app[ENTRIES]
        print(
            f"Bot '{name}' is up in {time.perf_counter() - started:.2f} s: "
            f"{scheme}://{host}:{settings.port} ({', '.join(entries) or 'no channel'})",
            flush=True,
        )

    logging.getLogger("aiohttp.server").addFilter(MALFORMED_REQUESTS)
    try:
        where: dict[str, Any] = (
            {"sock": listen()} if listen is not None else {"host": host, "port": settings.port}
        )
        web.run_app(
            app,
            **where,
            print=ready,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout,
            ssl_context=ssl_context,
        )
    except socket.gaierror as exc:  # before OSError: a host name that does not resolve
        raise ConfigError(f"--host {host}: {exc.strerror or exc}") from None
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        why = os.strerror(exc.errno)
        raise ConfigError(f"cannot listen on {host}:{settings.port}: {why}") from None


def bot_name(settings: ServerSettings) -> str:
    """What the startup line calls the bot: the project folder's name where the model is the
    project's (its newest in ``models/``, or a ``--model`` inside the folder), else the model
    file as given: a project folder may lend its endpoints and actions to another's model."""
    project = settings.project_dir.resolve()
    model = settings.model_path
    if model is None or model.resolve().is_relative_to(project):
        return project.name
    return str(model)


def announce_listening(settings: ServerSettings) -> None:
    """Say where the HTTP API listens and how it is protected."""
    if settings.effective_host() != settings.host:
        logger.warning(
            "the HTTP API is on without --auth-token or --jwt-secret: listening on %s only",
            settings.effective_host(),
        )
    elif settings.enable_api:
        logger.info("the HTTP API is on (authentication: %s)", _auth_kind(settings))


def _auth_kind(settings: ServerSettings) -> str:
    kinds = [k for k, v in (("token", settings.auth_token), ("JWT", settings.jwt_secret)) if v]
    return " and ".join(kinds) or "none: reachable from this machine only"
