"""What ``chatbot run`` is told: where the bot is, how it listens, who may call its API, and its
limits."""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chatbot.errors import ConfigError
from chatbot.project.endpoints import Credentials
from chatbot.ranges import whole_number

if TYPE_CHECKING:
    from chatbot.server.model_pull import ModelServer

MIB = 1024 * 1024
LOOPBACK = "127.0.0.1"

_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]*)\s*$", re.ASCII)


# The most seconds between two tries of a store at start (``store_wait``; Rasa's SQL store
# waits 5).
STORE_RETRY_S = 5.0


@dataclass(frozen=True)
class RateLimit:
    """``count`` messages per ``period`` seconds for one sender, in bursts of up to ``count``."""

    count: int
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    @classmethod
    def parse(cls, text: str, *, option: str = "rate limit") -> RateLimit | None:
        """``"30/min"``, ``"5/s"``, ``"100/10s"``, ``"1000/hour"``; ``"off"`` or ``"0"`` -> None.
        ``option``: what an error names."""
        if text.strip().lower() in ("off", "none", "0", ""):
            return None
        match = _RATE.match(text.lower())
        if match is None or match.group(3) not in ("", *_PERIODS):
            raise ConfigError(
                f"{option} {text!r}: write it as COUNT/PERIOD, e.g. '30/min', '5/s', "
                "'100/10s' or '1000/hour' ('off' to turn it off)"
            )
        count, number, unit = whole_number(match.group(1)), match.group(2), match.group(3)
        if count is None:  # more than 9 digits: int() refuses 4,301, float() overflows later
            raise ConfigError(f"{option} {text[:40]!r}: the count must be at most 999999999")
        period = (float(number) if number else 1.0) * _PERIODS.get(unit or "s", 1.0)
        if count <= 0 or period <= 0 or not math.isfinite(period):
            raise ConfigError(f"{option} {text!r}: the count and the period must be positive")
        return cls(count, period)

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_MAX_IN_FLIGHT = 1000
# Rasa's --response-timeout default (Sanic's RESPONSE_TIMEOUT there).
DEFAULT_RESPONSE_TIMEOUT = 3600.0


@dataclass(frozen=True)
class LogOptions:
    """Where ``chatbot run`` logs besides stderr, as Rasa's options say (``--log-file``,
    ``--use-syslog`` with ``--syslog-address``/``-port``/``-protocol``,
    ``--logging-config-file``), and from which level: what its workers repeat
    (``chatbot.log_setup.apply_log_options``)."""

    level: int = logging.INFO
    log_file: Path | None = None
    syslog: tuple[str, int, str] | None = None  # address, port, "udp" or "tcp"
    config_file: Path | None = None


@dataclass(frozen=True)
class WorkerSlot:
    """This process is worker ``index`` (1, 2, ...) of ``count`` under ``chatbot run --workers``
    (``chatbot.server.workers``); ``shared_dir`` is the folder the workers share their metrics
    and the served model through (``chatbot.server.worker_sync``); ``secret``, random for each
    run of the supervisor, is what the workers derive the secrets they must agree on from (a
    channel's own webhook secret, the chat's session keys: ``worker_sync.shared_secret``)."""

    index: int
    count: int
    shared_dir: Path
    secret: bytes = field(default=b"", repr=False)


@dataclass
class ServerSettings:
    project_dir: Path = Path(".")
    model_path: Path | None = None
    host: str = "0.0.0.0"
    port: int = 5005
    # Where the embedded SQLite store lives when endpoints.yml names no tracker_store.
    sqlite_path: Path | None = None
    # endpoints.yml and credentials.yml (default: the project's, when they exist).
    endpoints_path: Path | None = None
    credentials_path: Path | None = None
    # The channels to mount; None means the REST channel only (no credentials.yml).
    credentials: Credentials | None = None
    # Where the served model is pulled from (endpoints.yml ``models:``); None: no model server.
    model_server: ModelServer | None = None
    # The HTTP API (``/conversations/...``, ``/model``, ...) and who may call it.
    enable_api: bool = False
    auth_token: str | None = None
    jwt_secret: str | None = None
    jwt_method: str = "HS256"
    cors: tuple[str, ...] = ()
    # HTTPS (Rasa's --ssl-certificate, --ssl-keyfile, --ssl-ca-file, --ssl-password); without a
    # certificate, plain HTTP (``chatbot.server.tls``).
    ssl_certificate: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_ca_file: Path | None = None
    ssl_password: str | None = None
    # Limits.
    max_body_bytes: int = MIB
    max_message_chars: int = 10_000
    max_model_bytes: int = 2048 * MIB
    rate_limit: RateLimit | None = field(default_factory=lambda: RateLimit(60, 60.0))
    # Per client address on the channels a client talks to directly (REST, callback, socket.io),
    # whatever senders it names; None: no such limit. The address is the peer's, or, where the
    # peer is one of ``forwarded_allow_ips`` (addresses, networks, "*"), what its
    # X-Forwarded-For says (``chatbot.server.clients``).
    client_rate_limit: RateLimit | None = None
    forwarded_allow_ips: tuple[str, ...] = ()
    # Seconds a request's body may take to arrive once its headers have (Sanic's, so Rasa's,
    # REQUEST_TIMEOUT); a model upload may take that long between two of its chunks. A client
    # that sends less than it announced no longer holds its connection open for ever.
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    # Messages (turns) in progress at most, on all channels and the API together; one more is a
    # 503 with Retry-After (a chat user is told to try again) rather than a wait in a queue
    # longer than its client waits (uvicorn's --limit-concurrency). None: no limit.
    max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT
    # Seconds a request may take to be answered once it has arrived (Rasa's --response-timeout);
    # past them the client gets a 503 and the turn is cancelled (its events are not stored).
    # Websockets are not cut.
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    # Seconds that SIGTERM waits for messages in flight before closing connections.
    shutdown_timeout: float = 30.0
    # torch's intra-op threads, where custom code has imported torch (models are served in numpy,
    # without torch). One: more threads only contend with the event loop and each other (150-400
    # ms a message instead of 1-2 ms on a busy 2-CPU machine). None leaves torch's default.
    torch_threads: int | None = 1
    # Refuse to start when the conversation store cannot be reached (``chatbot run`` says so in
    # one line and exits 1). Off, the app starts anyway and every message tries the store again
    # (as it does for a store lost while running): what an embedding application or a test wants.
    require_store_at_start: bool = False
    # With it: seconds to keep trying the conversation and lock stores at start, at most
    # ``STORE_RETRY_S`` apart, before giving up (a database that starts beside the bot, as in a
    # docker-compose file, answers a few seconds after it; Rasa's SQL store waits for good).
    store_wait: float = 0.0
    # Server processes on one listening socket (``chatbot.server.workers``); None: not given, so
    # Rasa's $SANIC_WORKERS is read, else one.
    workers: int | None = None
    # Set in each of those processes: which one it is.
    worker: WorkerSlot | None = None
    # How the server logs, which the workers repeat.
    log: LogOptions = field(default_factory=LogOptions)
    # Rasa's --connector: only this channel of the credentials is mounted.
    connector: str | None = None

    @property
    def auth_configured(self) -> bool:
        return bool(self.auth_token or self.jwt_secret)

    def effective_host(self) -> str:
        """The interface to listen on: loopback only while the API is on without authentication."""
        if self.enable_api and not self.auth_configured and not is_loopback(self.host):
            return LOOPBACK
        return self.host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
