"""Rasa's ``DucklingEntityExtractor``: dates, times, numbers, amounts, distances, ... from a
Duckling server (https://github.com/facebook/duckling), beside the entities of the NLU model::

    pipeline:
      - name: DucklingEntityExtractor
        url: http://localhost:8000          # or $RASA_DUCKLING_HTTP_URL, which wins
        dimensions: [time, number]          # default: every dimension Duckling finds
        locale: en_GB                       # default: Duckling's (en_US)
        timezone: Europe/London             # default: Duckling's
        timeout: 3                          # seconds one request may take (Rasa's default)

Each user message (not ``/intent`` payloads, as in Rasa) is posted to ``<url>/parse`` as Rasa
posts it (form fields ``text``, ``locale``, ``tz``, ``dims``, ``reftime`` in milliseconds), and
each match becomes an entity as Rasa makes it: ``entity`` the dimension, ``value`` Duckling's
value (an interval: ``{"from": ..., "to": ...}``), ``additional_info`` Duckling's whole value,
``extractor: DucklingEntityExtractor``, confidence 1.

What the model file keeps is the configuration (``DucklingConfig``); the HTTP client
(``DucklingClient``) belongs to the agent, so a model swapped at run time needs no cleanup. A
Duckling that does not answer (refused, timed out, an error status, a body that is not a list of
matches) gives no entities and one warning; for ``RETRY_SECONDS`` after a failure messages are
parsed without asking it (one warning per pause, saying how many were skipped), so a dead Duckling
costs neither a timeout per message nor a log line per message. Malformed matches are skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from chatbot.capped_read import AnswerTooLarge, read_at_most
from chatbot.errors import ConfigError, ModelFileError
from chatbot.json_input import loads
from chatbot.project.endpoints import url_problem
from chatbot.ranges import finite_number

logger = logging.getLogger(__name__)

NAME = "DucklingEntityExtractor"
URL_VARIABLE = "RASA_DUCKLING_HTTP_URL"  # Rasa's: overrides the config's url
DEFAULT_TIMEOUT = 3.0  # seconds, Rasa's default
RETRY_SECONDS = 10.0  # after a failure, messages are parsed without Duckling this long
MAX_ANSWER_BYTES = 1 << 20  # a larger answer is a failure (a message has a few matches)
_KEYS = ("url", "dimensions", "locale", "timezone", "timeout")


@dataclass(frozen=True)
class DucklingConfig:
    """The ``DucklingEntityExtractor`` entry of a pipeline (kept in the model file)."""

    url: str | None = None
    dimensions: tuple[str, ...] | None = None
    locale: str | None = None
    timezone: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str = "") -> DucklingConfig:
        """From a pipeline entry's keys (``where``: "file:line: "); ``ConfigError`` naming the
        key and value that is wrong."""
        unknown = sorted(set(params) - set(_KEYS) - {"name"})
        if unknown:
            raise ConfigError(
                f"{where}{NAME}: unknown setting {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(_KEYS)}"
            )
        url = params.get("url")
        if url is not None:
            url = _checked_url(url, f"{where}{NAME}: url")
        dimensions = params.get("dimensions")
        if dimensions is not None:
            if isinstance(dimensions, str):
                dimensions = [dimensions]
            if not isinstance(dimensions, list) or not all(
                isinstance(d, str) and d.strip() for d in dimensions
            ):
                raise ConfigError(
                    f"{where}{NAME}: dimensions must be a list of names such as "
                    f"[time, number], not {dimensions!r}"
                )
            dimensions = tuple(d.strip() for d in dimensions)
        text: dict[str, str | None] = {}
        for key in ("locale", "timezone"):
            value = params.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{where}{NAME}: {key} must be a name, not {value!r}")
            text[key] = value.strip() if isinstance(value, str) else None
        timeout = params.get("timeout", DEFAULT_TIMEOUT)
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        seconds = finite_number(timeout)
        if seconds is None or seconds <= 0:
            raise ConfigError(f"{where}{NAME}: timeout must be a positive number of seconds")
        return cls(url, dimensions, text["locale"], text["timezone"], seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "dimensions": None if self.dimensions is None else list(self.dimensions),
            "locale": self.locale,
            "timezone": self.timezone,
            "timeout": self.timeout,
        }

    @classmethod
    def from_json(cls, data: object) -> DucklingConfig:
        if not isinstance(data, dict):
            raise ModelFileError("the model's 'duckling' must be a JSON object")
        try:
            return cls.from_params(data)
        except ConfigError as error:
            raise ModelFileError(f"the model's 'duckling': {error}") from None

    def effective_url(self) -> str | None:
        """The server to ask: ``$RASA_DUCKLING_HTTP_URL`` where set (as Rasa), else ``url``."""
        return os.environ.get(URL_VARIABLE) or self.url

    def finds(self, entity: str) -> bool:
        """Whether Duckling may give this entity (a dimension it is asked for)."""
        return self.dimensions is None or entity in self.dimensions


def duckling_from_pipeline(pipeline: Sequence[Any]) -> DucklingConfig | None:
    """The pipeline's ``DucklingEntityExtractor`` entry (the last, if named twice), or None."""
    found = None
    for component in pipeline:
        if component.name == NAME:
            found = DucklingConfig.from_params(component.params, component.origin.prefix)
    return found


def _checked_url(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be an http(s) URL, not {value!r}")
    url = value.strip()
    if url_problem(url) is not None or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(
            f"{what} must be an http(s) URL such as http://localhost:8000, not {value!r}"
        )
    return url.rstrip("/")


def to_entities(
    matches: object, text: str, dimensions: Sequence[str] | None
) -> tuple[list[dict[str, Any]], int]:
    """Duckling's matches as Rasa's entities, and how many malformed ones were skipped."""
    if not isinstance(matches, list):
        raise ValueError(f"the answer is {type(matches).__name__}, not a list of matches")
    entities: list[dict[str, Any]] = []
    skipped = 0
    for match in matches:
        entity = _entity(match, len(text))
        if entity is None:
            skipped += 1
        elif dimensions is None or entity["entity"] in dimensions:
            entities.append(entity)
    return entities, skipped


def _entity(match: object, length: int) -> dict[str, Any] | None:
    if not isinstance(match, dict):
        return None
    start, end, dim, value = (match.get(k) for k in ("start", "end", "dim", "value"))
    if not (
        isinstance(start, int)
        and isinstance(end, int)
        and not isinstance(start, bool)
        and not isinstance(end, bool)
        and 0 <= start <= end <= length
        and isinstance(dim, str)
        and dim
        and isinstance(value, dict)
    ):
        return None
    if value.get("type") == "interval":
        bounds = {k: value.get(k) for k in ("from", "to")}
        extracted: Any = {
            "to": bounds["to"].get("value") if isinstance(bounds["to"], dict) else None,
            "from": bounds["from"].get("value") if isinstance(bounds["from"], dict) else None,
        }
    else:
        extracted = value.get("value")
    body = match.get("body", match.get("text"))
    return {
        "entity": dim,
        "start": start,
        "end": end,
        "text": body if isinstance(body, str) else None,
        "value": extracted,
        "confidence": 1.0,
        "additional_info": value,
        "extractor": NAME,
    }


class DucklingClient:
    """Asks a Duckling server for a message's entities (one HTTP session, made on first use)."""

    def __init__(self, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.retry_seconds = retry_seconds
        self._session: aiohttp.ClientSession | None = None
        self._paused_until = 0.0
        self._skipped = 0
        self._failing = False  # since the last failure, no answer came
        self._warned_no_url = False

    async def entities(
        self, config: DucklingConfig, text: str, reference_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """The entities Duckling finds in ``text``; none (and a warning) where it fails."""
        url = config.effective_url()
        if url is None:
            if not self._warned_no_url:
                self._warned_no_url = True
                logger.warning(
                    "%s is in the pipeline but has no url (nor is $%s set): "
                    "no Duckling entities are extracted",
                    NAME,
                    URL_VARIABLE,
                )
            return []
        if not text.strip():
            return []
        now = time.monotonic()
        if now < self._paused_until:
            self._skipped += 1
            return []
        form = {
            "text": text,
            "reftime": str(reference_ms if reference_ms is not None else int(time.time() * 1000)),
        }
        if config.locale:
            form["locale"] = config.locale
        if config.timezone:
            form["tz"] = config.timezone
        if config.dimensions is not None:
            form["dims"] = json.dumps(list(config.dimensions))
        parse_url = f"{url.rstrip('/')}/parse"
        try:
            session = self._session_now()
            async with session.post(
                parse_url, data=form, timeout=aiohttp.ClientTimeout(total=config.timeout)
            ) as response:
                body = await read_at_most(response, MAX_ANSWER_BYTES)
                if response.status != 200:
                    shown = body[:200].decode("utf-8", "replace")
                    raise ValueError(f"status {response.status}: {shown!r}")
                matches = loads(body)  # NaN and deep nesting are ValueErrors too
            entities, skipped = to_entities(matches, text, config.dimensions)
        except (
            aiohttp.ClientError,
            asyncio.TimeoutError,
            ValueError,
            AnswerTooLarge,
        ) as exc:
            self._failed(parse_url, exc, config.timeout)
            return []
        if skipped:
            logger.warning("Duckling at %s: %d malformed matches skipped", parse_url, skipped)
        if self._failing:
            self._failing = False
            logger.info(
                "Duckling at %s answers again (%d messages were parsed without it)",
                parse_url,
                self._skipped,
            )
            self._skipped = 0
        return entities

    async def ping(self, config: DucklingConfig) -> bool:
        """Whether the Duckling server answers (``GET /``, which Duckling answers with a 200
        ``quack!``), for ``/health``."""
        url = config.effective_url()
        if url is None:
            return False
        try:
            session = self._session_now()
            timeout = aiohttp.ClientTimeout(total=config.timeout)
            async with session.get(f"{url.rstrip('/')}/", timeout=timeout) as response:
                await read_at_most(response, 1024)
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, AnswerTooLarge):
            return False

    def _failed(self, url: str, exc: BaseException, timeout: float) -> None:
        if time.monotonic() < self._paused_until:
            self._skipped += 1  # a request sent before the pause began: said once already
            return
        self._failing = True
        reason = f"no answer in {timeout:g} s" if isinstance(exc, asyncio.TimeoutError) else exc
        skipped = f" ({self._skipped} messages were parsed without it)" if self._skipped else ""
        logger.warning(
            "Duckling at %s failed: %s; messages are parsed without its entities for %g s%s",
            url,
            reason,
            self.retry_seconds,
            skipped,
        )
        self._skipped = 0
        self._paused_until = time.monotonic() + self.retry_seconds

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
