"""Where the process logs: stderr (``configure_logging``), and as Rasa's ``rasa run`` options
say, a logging configuration file, a log file and a syslog server (``apply_log_options``). Every
handler escapes control characters in a line's arguments and folds repeated lines."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from chatbot.errors import ConfigError
from chatbot.log_lines import RepeatedLines
from chatbot.server.settings import LogOptions


class EscapeArguments(logging.Filter):
    """Control characters (a newline, an escape sequence) in a log line's string arguments are
    written as escapes: a conversation id or a channel name comes from a client, and one with a
    newline in it would otherwise forge a line of its own in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: _escaped(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def _escaped(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def add_log_file(path: Path) -> None:
    """Log to ``path`` as well as to stderr (Rasa's ``--log-file``): appended, each line with
    its time, level and logger (a file has no service manager to stamp it), escaped as
    stderr's."""
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as error:
        why = error.strerror or error
        raise ConfigError(f"--log-file {path}: cannot write it: {why}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(EscapeArguments())
    handler.addFilter(RepeatedLines())
    logging.getLogger().addHandler(handler)


VERBOSE_FORMAT = "%(levelname)s %(name)s: %(message)s"
SYSLOG_FORMAT = "chatbot[%(process)d]: %(levelname)s %(name)s: %(message)s"


def apply_log_options(options: LogOptions) -> None:
    """Log as Rasa's ``rasa run`` options say: ``--logging-config-file`` (a YAML
    ``logging.config.dictConfig``), ``--log-file``, ``--use-syslog``. A mistake in any of them is
    a ``ConfigError`` naming it."""
    if options.config_file is not None:
        _logging_config(options.config_file)
    if options.log_file is not None:
        add_log_file(options.log_file)
    if options.syslog is not None:
        add_syslog(*options.syslog)


def _logging_config(path: Path) -> None:
    import logging.config

    import yaml

    from chatbot.file_input import file_problem, read_bytes

    where = f"--logging-config-file {path}"
    try:
        config = yaml.safe_load(read_bytes(path, what="a logging configuration").decode("utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: {file_problem(error)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"--logging-config-file {path}{line}: not valid YAML") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: a mapping (Python's logging dictConfig) is expected")
    config.setdefault("version", 1)
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as error:
        raise ConfigError(f"{where}: {error}") from None


def add_syslog(address: str, port: int, protocol: str) -> None:
    """Send the log to a syslog server too (Rasa's ``--use-syslog``): UDP or TCP."""
    kinds = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}
    kind = kinds.get(protocol.lower())
    if kind is None:
        raise ConfigError(f"--syslog-protocol {protocol}: use UDP or TCP")
    try:
        handler = syslog_handler(address, port, kind)
    except OSError as error:
        why = error.strerror or error
        raise ConfigError(f"--syslog-address {address}:{port} ({protocol}): {why}") from None
    handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    handler.addFilter(EscapeArguments())
    handler.addFilter(RepeatedLines())
    logging.getLogger().addHandler(handler)


def syslog_handler(address: str, port: int, kind: socket.SocketKind) -> logging.Handler:
    """A SysLogHandler that closes without a socket too: Python 3.10's leaves ``socket`` unset
    where it cannot connect, after logging has registered it, so closing every handler at exit
    raised (a traceback after the one-line error of a syslog server that is down)."""
    import logging.handlers

    class SysLogHandler(logging.handlers.SysLogHandler):
        def close(self) -> None:
            if getattr(self, "socket", None) is None:
                logging.Handler.close(self)
            else:
                super().close()

    return SysLogHandler(address=(address, port), socktype=kind)


def configure_logging(level: int) -> None:
    """Log to stderr from ``level`` on (DEBUG: each line with its level and logger)."""
    verbose = level <= logging.DEBUG
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=VERBOSE_FORMAT if verbose else "%(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, EscapeArguments) for f in handler.filters):
            handler.addFilter(EscapeArguments())
            handler.addFilter(RepeatedLines())  # after the escaping: it renders the line
    for noisy in ("asyncio", "aiohttp.access", "sanic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
