"""From endpoints.yml's ``tracker_store:`` and ``lock_store:`` blocks to store objects.

The blocks are read as Rasa 3.x writes them::

    tracker_store:
      type: SQL                 # or sql / SQLTrackerStore; in_memory / InMemoryTrackerStore;
                                # redis / RedisTrackerStore (url, port, db 0, password,
                                # key_prefix, record_exp: as the lock store below)
      dialect: postgresql       # or sqlite (the default)
      url: db.example.com       # the host (Rasa's name for it), may carry ":port"
      port: 5432
      db: rasa                  # the database; for sqlite, the file (relative: to endpoints.yml)
      username: rasa
      password: secret
      query: {sslmode: require} # added to the URL's query string
      login_db: postgres        # optional: connect here first and create `db` if missing

As Rasa's, a PostgreSQL store reads $POSTGRESQL_SCHEMA (its tables live in that schema, which
must exist) and $POSTGRESQL_POOL_SIZE / $POSTGRESQL_MAX_OVERFLOW (where the block has no
``pool_size`` / ``max_overflow``).

``url`` may also be a whole SQLAlchemy URL (``postgresql://user@host/db``,
``sqlite:///bot.db``); sync driver names are mapped to the async ones. ::

    lock_store:
      type: redis               # or RedisLockStore; in_memory / InMemoryLockStore
      url: localhost            # the host, or a whole redis:// URL
      port: 6379
      db: 1                     # Rasa's default for the lock store
      password: secret
      key_prefix: mybot         # keys become "mybot:lock:<conversation id>:..."
      lock_lifetime: 60         # seconds a holder keeps a lock at most
      wait_timeout: 65          # seconds a message waits for the lock before LockTimeout

The known types are the tables ``STORE_TYPES`` and ``LOCK_STORE_TYPES`` (names compared without
regard to case). An unknown type is a ``ConfigError`` naming the file, the line and the known
types; nothing falls back silently, and no code is imported from a config file.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import URL

from chatbot.errors import ConfigError, Location
from chatbot.project.endpoints import EndpointBlock
from chatbot.store.base import ConversationStore
from chatbot.store.locks import (
    DEFAULT_LOCK_LIFETIME,
    DEFAULT_WAIT_TIMEOUT,
    InMemoryLockStore,
    LockStore,
)
from chatbot.store.memory import InMemoryStore
from chatbot.store.sql import SQLStore, async_url

logger = logging.getLogger(__name__)

StoreFactory = Callable[[EndpointBlock, "Path | None"], ConversationStore]
LockStoreFactory = Callable[[EndpointBlock], LockStore]

_SQL_KEYS = frozenset(
    {"type", "dialect", "url", "host", "port", "db", "username", "password", "query", "login_db"}
    | {"pool_size", "max_overflow", "connect_timeout"}
)
_REDIS_KEYS = frozenset(
    {"type", "url", "host", "port", "db", "username", "password", "key_prefix", "use_ssl"}
    | {"ssl_keyfile", "ssl_certfile", "ssl_ca_certs", "socket_timeout"}
    | {"lock_lifetime", "wait_timeout"}
)
_REDIS_STORE_KEYS = (_REDIS_KEYS - {"lock_lifetime", "wait_timeout"}) | {"record_exp"}
_IN_MEMORY_LOCK_KEYS = frozenset({"type", "lock_lifetime", "wait_timeout"})
# Rasa's tracker stores that we do not provide, for a more helpful error.
_RASA_ONLY_STORES = ("mongod", "dynamo")


def create_store(
    block: EndpointBlock | None, *, default_sqlite_path: Path | None
) -> ConversationStore:
    """The conversation store a ``tracker_store:`` block asks for.

    No block: SQLite at ``default_sqlite_path`` (its folder is created), or in memory when that
    is None.
    """
    if block is None:
        if default_sqlite_path is None:
            return InMemoryStore()
        default_sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return SQLStore(URL.create("sqlite+aiosqlite", database=str(default_sqlite_path)))
    type_name = block.type
    if type_name is None and "://" in str(block.params.get("url", "")):
        type_name = "sql"  # a bare SQLAlchemy URL
    factory = _lookup(block, type_name, STORE_TYPES, "store")
    return factory(block, default_sqlite_path)


def create_lock_store(block: EndpointBlock | None) -> LockStore:
    """The lock store a ``lock_store:`` block asks for; in-process locks when there is none."""
    if block is None:
        return InMemoryLockStore()
    return _lookup(block, block.type, LOCK_STORE_TYPES, "lock store")(block)


def not_shared_between_processes(
    tracker_store: EndpointBlock | None, lock_store: EndpointBlock | None
) -> str | None:
    """Why several server processes of one machine could not serve these stores together
    (``chatbot run --workers``), or None: they need one lock store, so that a conversation's
    messages are taken one at a time whichever process receives them (without a ``lock_store``
    block: a lock file, ``chatbot.store.file_lock``), and conversations they all read."""
    if tracker_store is not None:
        type_name = tracker_store.type
        if type_name is None and "://" in str(tracker_store.params.get("url", "")):
            type_name = "sql"
        if _lookup(tracker_store, type_name, STORE_TYPES, "store") is _in_memory_store:
            where = Location(tracker_store.origin.file, tracker_store.origin.line).describe()
            return (
                f"{where or 'endpoints'}: tracker_store: type {type_name}: the processes would "
                "each keep conversations of their own; use sql (SQLite or PostgreSQL) or redis"
            )
    if lock_store is None:
        from chatbot.store.file_lock import AVAILABLE

        if AVAILABLE:
            return None
        return (
            "the processes need a lock store they share, so that each conversation's messages "
            "are answered one at a time (this system has no file locks): add "
            "'lock_store: {type: redis, url: ...}' to endpoints.yml"
        )
    if _lookup(lock_store, lock_store.type, LOCK_STORE_TYPES, "lock store") is (
        _in_memory_lock_store
    ):
        where = Location(lock_store.origin.file, lock_store.origin.line).describe()
        return (
            f"{where or 'endpoints'}: lock_store: type {lock_store.type}: the processes would each "
            "keep locks of their own; use 'type: redis', or no lock_store (a lock file then)"
        )
    return None


def _lookup(
    block: EndpointBlock, type_name: str | None, table: Mapping[str, Any], what: str
) -> Any:
    by_lower = {name.lower(): factory for name, factory in table.items()}
    known = ", ".join(table)
    if type_name is None:
        raise _error(block, f"no 'type' given; known {what} types: {known}", key="type")
    factory = by_lower.get(type_name.lower())
    if factory is None:
        hint = f"known {what} types: {known}"
        if what == "store" and type_name.lower() in _RASA_ONLY_STORES:
            hint += f" (Rasa's '{type_name}' tracker store is not provided; use sql)"
        raise _error(block, f"unknown {what} type", key="type", value=type_name, hint=hint)
    return factory


# ----------------------------------------------------------------------------- conversation stores


def _in_memory_store(block: EndpointBlock, default_sqlite_path: Path | None) -> ConversationStore:
    _warn_unknown_keys(block, frozenset({"type"}))
    return InMemoryStore()


# Rasa's environment variables for a PostgreSQL tracker store: the schema its tables are in
# (which must exist), and the pool's sizes where the block gives none.
SCHEMA_ENV = "POSTGRESQL_SCHEMA"
POOL_ENV = {"pool_size": "POSTGRESQL_POOL_SIZE", "max_overflow": "POSTGRESQL_MAX_OVERFLOW"}


def _sql_store(block: EndpointBlock, default_sqlite_path: Path | None) -> ConversationStore:
    _warn_unknown_keys(block, _SQL_KEYS)
    url, login_url = sql_urls(block, default_sqlite_path)
    options: dict[str, Any] = {}
    postgresql = url.get_backend_name() == "postgresql"
    for key in ("pool_size", "max_overflow"):
        if key in block.params:
            options[key] = _positive(block, key, int)
        elif postgresql and os.environ.get(POOL_ENV[key], "").strip():
            options[key] = _env_count(POOL_ENV[key], minimum=0 if key == "max_overflow" else 1)
    schema = os.environ.get(SCHEMA_ENV, "").strip()
    if postgresql and schema:
        options["schema"] = schema
    if "connect_timeout" in block.params:
        options["connect_timeout"] = _positive(block, "connect_timeout", float)
    try:
        return SQLStore(url, login_url=login_url, **options)
    except ConfigError as error:
        raise _error(block, str(error)) from None


def _env_count(name: str, *, minimum: int) -> int:
    value = os.environ[name].strip()
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ConfigError(
            f"environment variable {name}: must be a whole number of at least {minimum}, "
            f"got {value!r}"
        )
    return number


def sql_urls(
    block: EndpointBlock, default_sqlite_path: Path | None = None
) -> tuple[URL, URL | None]:
    """The async SQLAlchemy URL a ``type: sql`` block means, and the ``login_db`` URL if any.

    Follows Rasa's ``get_db_url``: a ``url`` holding ``://`` is the whole URL; otherwise the URL
    is built from dialect, url (host), port, db, username, password and query.
    """
    params = block.params
    host = params.get("url", params.get("host"))
    if host is not None and "://" in str(host):
        return _async(block, str(host), "url"), None
    dialect = str(params.get("dialect") or "sqlite")
    _async(block, URL.create(dialect), "dialect")  # an unknown dialect before a missing db
    db = params.get("db")
    if dialect.split("+")[0] == "sqlite":
        path = Path(str(db)) if db else default_sqlite_path or Path("rasa.db")
        if not path.is_absolute() and block.origin.file:
            path = Path(block.origin.file).parent / path
        return _async(block, URL.create(dialect, database=str(path)), "dialect"), None
    if not db:
        raise _error(block, f"a {dialect} database needs its name", key="db")
    port = _positive(block, "port", int) if params.get("port") not in (None, "") else None
    hostname = str(host) if host else None
    if hostname:
        parsed = urlsplit(f"scheme://{hostname}")  # Rasa lets the host carry the port
        try:
            port = parsed.port or port
        except ValueError:
            raise _error(block, "bad port in the host", key="url", value=host) from None
        hostname = parsed.hostname or hostname
    query = params.get("query") or {}
    if not isinstance(query, Mapping):
        raise _error(block, "query must be a mapping of URL parameters", key="query", value=query)
    password = params.get("password")

    def build(database: str) -> URL:
        return URL.create(
            dialect,
            username=str(params["username"]) if params.get("username") is not None else None,
            password=str(password) if password is not None else None,
            host=hostname,
            port=port,
            database=database,
            query={str(k): str(v) for k, v in query.items()},
        )

    url = _async(block, build(str(db)), "dialect")
    login_db = params.get("login_db")
    login_url = _async(block, build(str(login_db)), "dialect") if login_db else None
    return url, login_url


def _async(block: EndpointBlock, url: str | URL, key: str) -> URL:
    try:
        return async_url(url)
    except ConfigError as error:
        raise _error(block, str(error), key=key) from None


def _redis_store(block: EndpointBlock, default_sqlite_path: Path | None) -> ConversationStore:
    from chatbot.store.redis_store import RedisStore  # redis is imported only when used

    _warn_unknown_keys(block, _REDIS_STORE_KEYS)
    url, options = redis_url(block, default_db=0)  # Rasa's default db for the tracker store
    key_prefix = block.params.get("key_prefix")
    prefix = f"{key_prefix}:store:" if key_prefix else "chatbot:store:"
    record_exp = None
    if block.params.get("record_exp") not in (None, ""):
        record_exp = _positive(block, "record_exp", float)
    return RedisStore(url, key_prefix=prefix, record_exp=record_exp, client_options=options)


STORE_TYPES: dict[str, StoreFactory] = {
    "in_memory": _in_memory_store,
    "InMemoryTrackerStore": _in_memory_store,
    "sql": _sql_store,
    "SQLTrackerStore": _sql_store,
    "redis": _redis_store,
    "RedisTrackerStore": _redis_store,
}


# ------------------------------------------------------------------------------------ lock stores


def _lock_timing(block: EndpointBlock) -> dict[str, float]:
    timing = {"lock_lifetime": DEFAULT_LOCK_LIFETIME, "wait_timeout": DEFAULT_WAIT_TIMEOUT}
    for key in timing:
        if block.params.get(key) is not None:
            timing[key] = _positive(block, key, float)
    return timing


def _in_memory_lock_store(block: EndpointBlock) -> LockStore:
    _warn_unknown_keys(block, _IN_MEMORY_LOCK_KEYS)
    return InMemoryLockStore(**_lock_timing(block))


def _redis_lock_store(block: EndpointBlock) -> LockStore:
    from chatbot.store.redis_lock import RedisLockStore  # redis is imported only when used

    _warn_unknown_keys(block, _REDIS_KEYS)
    url, options = redis_url(block)
    key_prefix = block.params.get("key_prefix")
    prefix = f"{key_prefix}:lock:" if key_prefix else "chatbot:lock:"
    return RedisLockStore(url, key_prefix=prefix, client_options=options, **_lock_timing(block))


def redis_url(block: EndpointBlock, default_db: int = 1) -> tuple[str, dict[str, Any]]:
    """The Redis URL a ``type: redis`` block means, and the client's other options."""
    params = block.params
    options: dict[str, Any] = {}
    for key in ("username", "password"):
        if params.get(key) is not None:
            options[key] = str(params[key])
    for key in ("ssl_keyfile", "ssl_certfile", "ssl_ca_certs"):
        if params.get(key):
            options[key] = str(params[key])
    if params.get("socket_timeout") is not None:
        options["socket_timeout"] = _positive(block, "socket_timeout", float)
    given = params.get("url") or params.get("host") or "localhost"
    key = "url" if params.get("url") else "host"
    if not isinstance(given, str):
        raise _error(block, "a host name or redis:// URL is text", key=key, value=given)
    host = given.strip()
    if "://" in host:
        if not host.startswith(("redis://", "rediss://", "unix://")):
            raise _error(block, "not a redis URL", key=key, value=host)
        _check_url(block, host, key)
        return host, options
    port = _positive(block, "port", int) if params.get("port") not in (None, "") else 6379
    with_port = re.fullmatch(r"([^:\s]+):(\d+)", host)
    if with_port and params.get("port") in (None, ""):  # "host:port", as the SQL blocks take
        host, port = with_port[1], int(with_port[2])
    db = params.get("db", default_db)
    try:
        db = int(db)
    except (TypeError, ValueError, OverflowError):
        raise _error(block, "db must be a number", key="db", value=db) from None
    scheme = "rediss" if _flag(params.get("use_ssl")) else "redis"
    url = f"{scheme}://{host}:{port}/{db}"
    _check_url(block, url, key, value=host)
    return url, options


def _check_url(block: EndpointBlock, url: str, key: str, value: str | None = None) -> None:
    """A ConfigError where redis-py could not read ``url`` (a host with ':', '/', spaces, ...)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        parts = None
    if parts is None or (parts.scheme != "unix" and not parts.hostname) or " " in url:
        raise _error(block, "not a host name or redis:// URL", key=key, value=value or url)


LOCK_STORE_TYPES: dict[str, LockStoreFactory] = {
    "in_memory": _in_memory_lock_store,
    "InMemoryLockStore": _in_memory_lock_store,
    "redis": _redis_lock_store,
    "RedisLockStore": _redis_lock_store,
}


# -------------------------------------------------------------------------------------- helpers


def _error(
    block: EndpointBlock,
    message: str,
    *,
    key: str | None = None,
    value: object = None,
    hint: str | None = None,
) -> ConfigError:
    where = Location(block.origin.file, block.origin.line).describe() or "endpoints"
    text = f"{where}: {block.name}: {message}"
    if key is not None:
        text += f" (key '{key}'" + (f", value {value!r})" if value is not None else ")")
    if hint:
        text += f"; {hint}"
    return ConfigError(text)


def _positive(block: EndpointBlock, key: str, kind: type[int] | type[float]) -> Any:
    value: Any = block.params.get(key)
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):  # int(inf) overflows
        number = None
    if number is None or isinstance(value, bool) or not 0 < number < math.inf:
        raise _error(block, f"{key} must be a positive number", key=key, value=value)
    return number


def _flag(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1")


def _warn_unknown_keys(block: EndpointBlock, known: frozenset[str]) -> None:
    unknown = sorted(set(block.params) - known - {"store_type"})  # Rasa's name for type
    if unknown:
        where = Location(block.origin.file, block.origin.line).describe() or "endpoints"
        logger.warning(
            "%s: %s: ignoring unknown key(s) %s; known: %s",
            where,
            block.name,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )
