"""Which custom-action executor endpoints.yml's ``action_endpoint`` asks for.

::

    action_endpoint:
      url: http://localhost:5055/webhook   # a rasa-sdk action server
      timeout: 10                          # seconds per call (default 10)
      token: secret                        # sent as ?token=secret (Rasa's token / token_name)
      headers: {X-Api-Key: abc}            # and Rasa's params, basic_auth, cafile
      circuit_breaker:
        failures: 5                        # failures in a row that open the circuit (0: never)
        open_seconds: 30                   # calls refused at once for this long, then one tried

    action_endpoint:
      actions_module: actions              # rasa-sdk actions run in-process, without HTTP
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.registry import CustomActionExecutor
from chatbot.actions.remote import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_OPEN_SECONDS,
    DEFAULT_TIMEOUT,
    CircuitBreaker,
    HTTPActionExecutor,
)
from chatbot.errors import ConfigError
from chatbot.paths import exists
from chatbot.project.endpoints import EndpointBlock, url_problem
from chatbot.ranges import finite_number

logger = logging.getLogger(__name__)

_KNOWN_KEYS = frozenset(
    {"url", "actions_module", "timeout", "token", "token_name", "headers", "params"}
    | {"basic_auth", "cafile", "circuit_breaker", "type"}
)


def create_action_executor(
    block: EndpointBlock | None, project_dir: Path
) -> CustomActionExecutor | None:
    if block is None:
        return None
    where = block.origin.prefix
    params = block.params
    block.warn_unknown_keys(_KNOWN_KEYS)
    if params.get("actions_module"):
        try:
            return InProcessExecutor(project_dir, str(params["actions_module"]))
        except ConfigError as exc:
            raise ConfigError(f"{where}action_endpoint: {exc}") from exc
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}action_endpoint needs 'url' (an action server, http:// or https://) or "
            f"'actions_module' (in-process), not {url!r}"
        )
    problem = url_problem(url)
    if problem is not None:
        raise ConfigError(f"{where}action_endpoint: 'url' {url!r} {problem}")
    return HTTPActionExecutor(
        url,
        timeout=_positive(params, "timeout", DEFAULT_TIMEOUT, where),
        headers=block.headers(),
        params=block.query(),
        basic_auth=block.basic_auth(),
        cafile=_cafile(params, project_dir, where),
        breaker=_breaker(block),
    )


def _cafile(params: dict[str, Any], project_dir: Path, where: str) -> str | None:
    """The certificate file of ``cafile`` (as given, else beside the project), checked to load."""
    value = params.get("cafile")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and not exists(path) and exists(project_dir / path):
        path = project_dir / path
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{where}action_endpoint: cafile {str(value)!r}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"{where}action_endpoint: cafile {str(value)!r} holds no PEM certificate ({exc})"
        ) from None
    return str(path)


def _positive(
    params: dict[str, Any], key: str, default: float, where: str, zero: bool = False
) -> float:
    value = params.get(key, default)
    number = finite_number(value)
    if number is None or number < 0 or (number == 0 and not zero):
        kind = "a non-negative" if zero else "a positive"
        raise ConfigError(
            f"{where}action_endpoint: '{key}' must be {kind} number, not {value!r:.40}"
        )
    return number


def _breaker(block: EndpointBlock) -> CircuitBreaker:
    where = block.origin.prefix
    settings = block.mapping("circuit_breaker")
    unknown = sorted(set(settings) - {"failures", "open_seconds"})
    if unknown:
        raise ConfigError(
            f"{where}action_endpoint: circuit_breaker: unknown key(s) {', '.join(unknown)}; "
            "known: failures, open_seconds"
        )
    failures = _positive(settings, "failures", DEFAULT_FAILURE_THRESHOLD, where, zero=True)
    if not float(failures).is_integer():
        raise ConfigError(f"{where}action_endpoint: circuit_breaker: 'failures' is a whole number")
    open_seconds = _positive(settings, "open_seconds", DEFAULT_OPEN_SECONDS, where)
    return CircuitBreaker(int(failures), open_seconds)
