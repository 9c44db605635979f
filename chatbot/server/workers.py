"""``chatbot run --workers N``: N server processes answer on one listening socket.

A machine with more cores answers more messages at once with more processes (one process runs
its Python on one core). This process, the supervisor, checks the project's settings once, takes
the port, and starts the workers (``multiprocessing``'s spawn: fresh interpreters), each a whole
server (``chatbot.server.app.serve``) listening on it; the kernel hands each new connection to one
of them (on Linux spread evenly over the workers' sockets, SO_REUSEPORT; elsewhere through one
shared socket). Rasa's ``SANIC_WORKERS`` is read when ``--workers`` is not given; as in Rasa, it
is ignored, with a warning, where the stores cannot be shared.

What the workers share, and what they do not:

- **Conversations.** A conversation's messages may reach any worker, so the workers need a lock
  store they share and a conversation store they all read (SQLite, the default, or PostgreSQL or
  Redis; not ``in_memory``): ``--workers`` refuses to start without them. Without a
  ``lock_store`` block the workers lock conversations through a file (``chatbot.store.file_lock``:
  this machine's processes only, no Redis needed); ``type: redis`` serves servers on several
  machines too. Each worker keeps its recent conversations in memory and catches up on what the
  others appended (``chatbot.store``).
- **Metrics and the served model**: through a folder (``chatbot.server.worker_sync``). A scrape
  of ``/metrics`` counts every worker; ``PUT /model`` and ``DELETE /model`` change every worker's
  model before they are answered.
- **Per worker**: the per-sender rate limit and ``--max-in-flight`` (a sender whose messages
  reach several workers may send up to N times the limit), reminders (each worker fires the
  reminders set in its turns, as Rasa's do), a model server's pulls (each worker pulls).

Lifecycle: the supervisor prints the ready line once every worker accepts connections. A worker
that stops on its own is started again (its replacement serves the model the others serve);
one that stops before it was ready stops them all, with its error said once, and so do more than
``MAX_RESTARTS`` restarts within ``RESTART_WINDOW`` seconds. SIGTERM or SIGINT to the supervisor
reaches every worker, which finishes its messages in flight (``--shutdown-timeout``); a second
signal stops them at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import click

from chatbot.errors import ChatbotError, ConfigError
from chatbot.server.settings import LogOptions, ServerSettings, WorkerSlot

logger = logging.getLogger(__name__)

ENV_SANIC_WORKERS = "SANIC_WORKERS"
RESTART_WINDOW = 60.0
MAX_RESTARTS = 5
# Seconds a worker gets past --shutdown-timeout before it is killed.
STOP_MARGIN = 5.0
_POLL = 0.2


def max_workers() -> int:
    """More server processes than 4 per core only compete for the CPU (and memory)."""
    return 4 * max(1, os.cpu_count() or 1)


def workers_wanted(settings: ServerSettings) -> int:
    """How many processes serve: ``--workers``, else ``$SANIC_WORKERS``, else one. More than one
    needs stores the processes can share: ``--workers`` is refused without them
    (``ConfigError``), ``SANIC_WORKERS`` ignored with a warning (as Rasa does)."""
    from chatbot.server.app import read_endpoints
    from chatbot.store.factory import not_shared_between_processes

    wanted = settings.workers
    given = "--workers"
    if wanted is None:
        raw = os.environ.get(ENV_SANIC_WORKERS, "").strip()
        if not raw:
            return 1
        given = f"{ENV_SANIC_WORKERS}={raw}"
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if wanted < 1:
            logger.warning("%s is not a whole number of at least 1: one process serves", given)
            return 1
    if wanted == 1:
        return 1
    most = max_workers()
    if wanted > most:  # a slip of the keyboard must not start thousands of processes
        if settings.workers is None:
            logger.warning("%s: more than %d (4 per core); %d serve", given, most, most)
            wanted = most
        else:
            shown = str(wanted)[:40]
            raise ConfigError(f"{given} {shown}: at most {most} on this machine (4 per core)")
    endpoints = read_endpoints(settings.project_dir, settings.endpoints_path)
    problem = not_shared_between_processes(endpoints.tracker_store, endpoints.lock_store)
    if problem is None:
        return wanted
    if settings.workers is None:
        logger.warning("%s: %s; one process serves", given, problem)
        return 1
    raise ConfigError(f"{given} {wanted}: {problem}")


def serve_workers(settings: ServerSettings, count: int) -> None:
    """Check the settings, listen, and supervise ``count`` workers until a signal stops them."""
    from chatbot.server.app import announce_listening, bot_name, model_path_of, resolve_settings
    from chatbot.server.tls import server_ssl_context

    started = time.perf_counter()
    # What every worker would find wrong is found here, once.
    tls = server_ssl_context(
        settings.ssl_certificate, settings.ssl_keyfile, settings.ssl_ca_file, settings.ssl_password
    )
    checked = resolve_settings(dataclasses.replace(settings))
    if checked.model_server is None:
        # Every worker serves the same file, even if a training adds a newer one meanwhile.
        settings = dataclasses.replace(settings, model_path=model_path_of(settings).resolve())
    _announce_sharing(checked, count)
    announce_listening(settings)
    host = settings.effective_host()
    listener = listen(host, settings.port)
    shared = Path(tempfile.mkdtemp(prefix="chatbot-workers-"))
    try:
        supervisor = Supervisor(settings, count, listener, shared, _log_options(settings))
        port = listener.port
        scheme = "http" if tls is None else "https"
        name = bot_name(settings)
        entries = ", ".join(_channel_entries(checked))

        def ready() -> None:
            print(
                f"Bot '{name}' is up in {time.perf_counter() - started:.2f} s with {count} "
                f"workers: {scheme}://{host}:{port} ({entries})",
                flush=True,
            )

        status = supervisor.run(ready)
    finally:
        listener.close()
        shutil.rmtree(shared, ignore_errors=True)
    if status:
        sys.exit(status)


def _channel_entries(settings: ServerSettings) -> list[str]:
    """Where clients reach the workers' channels (REST alone without credentials.yml)."""
    from connectors.registry import channel_entries, served_blocks

    return channel_entries(served_blocks(settings.credentials).values())


def _announce_sharing(settings: ServerSettings, count: int) -> None:
    """Say how the workers share locks, and what the socket.io channel needs of its clients."""
    from chatbot.server.app import read_endpoints

    lock_store = read_endpoints(settings.project_dir, settings.endpoints_path).lock_store
    if lock_store is None:
        logger.info(
            "the %d workers take conversations' locks through a file: this machine's processes "
            "only (servers on several machines need lock_store: type: redis)",
            count,
        )
    if settings.credentials is None or "socketio" not in settings.credentials.channels:
        return
    logger.warning(
        "socketio with %d workers: a client's long-polling requests may reach different "
        "workers, so socket.io clients must connect over websockets only (transports: "
        "['websocket']; the chat page does)",
        count,
    )
    if lock_store is None or str(lock_store.type).lower() not in ("redis", "redislockstore"):
        logger.warning(
            "socketio with %d workers and no Redis lock store: what the bot sends outside a "
            "socket's own messages (reminders, external events through the API) reaches only "
            "the sockets of the worker that sends it; with lock_store: type: redis it reaches "
            "all",
            count,
        )


# Linux spreads the connections to one port over the listening sockets that share it
# (SO_REUSEPORT): each worker gets its share even of long-lived connections. Elsewhere the
# workers take turns at one listening socket, which the busiest may hog.
SPREAD = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@dataclass
class Listener:
    """Where the workers listen: their own sockets on ``address`` (``SPREAD``), or ``shared``,
    one socket made here. ``held`` keeps the port while the workers come and go."""

    family: int
    address: tuple[Any, ...]
    held: socket.socket
    shared: socket.socket | None = None

    @property
    def port(self) -> int:
        return int(self.held.getsockname()[1])

    def open(self) -> socket.socket:
        """A worker's socket: the shared one, or one of its own on the held port."""
        if self.shared is not None:
            return self.shared
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.address[0], self.port, *self.address[2:]))
        sock.listen(BACKLOG)
        return sock

    def close(self) -> None:
        self.held.close()


BACKLOG = 1024


def listen(host: str, port: int, *, spread: bool = SPREAD) -> Listener:
    """Take ``host``:``port`` for the workers; a ``ConfigError`` where that is not possible (the
    port is taken, the host is not this machine's)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise ConfigError(f"--host {host}: {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bound without SO_REUSEPORT first: a port another server holds is refused, not shared.
        sock.bind(address)
        if spread:
            # Held, never listening (no connection waits on it); the workers' sockets may join.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            return Listener(family, tuple(sock.getsockname()), sock)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return Listener(family, tuple(sock.getsockname()), sock, shared=sock)


def _log_options(settings: ServerSettings) -> LogOptions:
    """The server's log options with the level it logs at now (``--debug`` sets it)."""
    return dataclasses.replace(settings.log, level=logging.getLogger().getEffectiveLevel())


# --------------------------------------------------------------------------------- supervisor


@dataclass
class _Worker:
    slot: WorkerSlot
    process: BaseProcess
    conn: Connection | None
    ready: bool = False
    error: str | None = None


@dataclass
class Supervisor:
    settings: ServerSettings
    count: int
    listener: Listener
    shared_dir: Path
    log: LogOptions
    workers: dict[int, _Worker] = field(default_factory=dict)
    restarts: list[float] = field(default_factory=list)
    signals: int = 0
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def run(self, ready: Callable[[], None]) -> int:
        """Supervise until a signal (0) or a failure (1); ``ready()`` once all accept."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(1, self.count + 1):
                self._start(index)
            status = self._watch(ready)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:  # a second Ctrl-C: no more waiting
            for worker in self.workers.values():
                if worker.process.is_alive():
                    with contextlib.suppress(OSError):
                        worker.process.kill()

    def _start(self, index: int) -> None:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        slot = WorkerSlot(index, self.count, self.shared_dir, self.secret)
        process = context.Process(
            target=worker_main,
            args=(slot, self.settings, self.listener, send, self.log),
            name=f"chatbot-worker-{index}",
        )
        process.start()
        send.close()  # the worker holds the other end: EOF here once it has gone
        self.workers[index] = _Worker(slot, process, receive)
        logger.info("worker %d: pid %s", index, process.pid)

    def _watch(self, ready: Callable[[], None]) -> int:
        announced = False
        while not self.signals:
            live = list(self.workers.values())
            waitables: list[Any] = [
                w.conn for w in live if w.conn is not None and not w.conn.closed
            ]
            waitables += [w.process.sentinel for w in live]
            wait(waitables, timeout=_POLL)
            for worker in live:
                self._read(worker)
            for index, worker in list(self.workers.items()):
                if worker.process.exitcode is None:
                    continue
                failure = self._gone(index, worker)
                if failure is not None:
                    click.secho(f"error: {failure}", fg="red", err=True)
                    return 1
            if not announced and all(w.ready for w in self.workers.values()):
                announced = True
                ready()
        return 0

    def _read(self, worker: _Worker) -> None:
        conn = worker.conn
        while conn is not None and not conn.closed:
            try:
                if not conn.poll():
                    return
                kind, text = conn.recv()
            except (EOFError, OSError):
                conn.close()
                return
            if kind == "ready":
                worker.ready = True
            elif kind == "error":
                worker.error = text

    def _gone(self, index: int, worker: _Worker) -> str | None:
        """A worker has stopped on its own: start another, or say why all must stop."""
        self._read(worker)
        if worker.conn is not None:
            worker.conn.close()
        status = _describe_exit(worker.process.exitcode)
        if worker.error is not None:
            return worker.error
        if not worker.ready:
            return f"worker {index} stopped before it was ready ({status})"
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
        if len(self.restarts) > MAX_RESTARTS:
            return (
                f"workers stopped {len(self.restarts)} times within {RESTART_WINDOW:.0f} s "
                f"(the last, worker {index}: {status}); stopping"
            )
        logger.warning(
            "worker %d (pid %s) stopped (%s); starting another", index, worker.process.pid, status
        )
        self._start(index)
        return None

    def _stop_all(self) -> None:
        """SIGTERM to every worker; those still running past the shutdown timeout are killed."""
        for worker in self.workers.values():
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.process.terminate()
        deadline = time.monotonic() + self.settings.shutdown_timeout + STOP_MARGIN
        for worker in self.workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.warning("worker %d did not stop in time: killed", worker.slot.index)
                worker.process.kill()
                worker.process.join()
            if worker.conn is not None:
                worker.conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# ----------------------------------------------------------------------------------- workers


def worker_main(
    slot: WorkerSlot,
    settings: ServerSettings,
    listener: Listener,
    conn: Connection,
    log: LogOptions,
) -> None:
    """One worker: a whole server on the supervisor's socket. A user's mistake goes back to the
    supervisor, to be said once."""
    from chatbot.server.app import serve
    from chatbot.server.worker_sync import ModelPointer

    _set_up_logging(log, slot.index)
    pointer = ModelPointer.read(slot.shared_dir)
    if pointer is not None and pointer.model_file is not None:
        # A worker that replaces one that stopped serves what the others serve.
        settings = dataclasses.replace(settings, model_path=Path(pointer.model_file))
    settings = dataclasses.replace(settings, worker=slot)
    try:
        serve(settings, listen=listener.open, on_ready=lambda: conn.send(("ready", None)))
    except ChatbotError as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", str(exc)))
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C reaches the workers too, maybe before they serve
        sys.exit(0)


def _set_up_logging(log: LogOptions, index: int) -> None:
    from chatbot.log_setup import apply_log_options, configure_logging

    configure_logging(log.level)
    apply_log_options(log)
    make_record = logging.getLogRecordFactory()
    prefix = f"[worker {index}] "

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        entry = make_record(*args, **kwargs)
        if isinstance(entry.msg, str):
            entry.msg = prefix + entry.msg
        return entry

    logging.setLogRecordFactory(record)
