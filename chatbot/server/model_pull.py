"""The served model pulled from a model server (endpoints.yml ``models:``), as Rasa does.

::

    models:
      url: http://my-server.com/models/default   # GET answers the model file
      token: secret                 # sent as ?token=secret (Rasa's token / token_name)
      wait_time_between_pulls: 10   # seconds between pulls (Rasa's default: 100);
                                    # null or 0: one pull, at startup
      timeout: 60                   # seconds one pull may take, download included (ours)
      # and Rasa's headers, params, basic_auth

The protocol is Rasa's: each GET sends ``If-None-Match`` with the ETag of the model it serves;
the server answers 304 (or 204) while that is still its model, 404 while it has none, or 200 with
the model file and its ``ETag``. The file is one of ours (``chatbot train``), not Rasa's tar.gz.

At startup the model is pulled before the server accepts connections, and it is preferred to
``--model`` or the newest model in ``models/`` (Rasa ignores those when ``models:`` is set). When
that pull brings nothing (the server is down, answers an error or a bad file), the local model
serves, if there is one, and why is logged; with no model at all the server starts without one
(``/status`` answers 409, channels 503) until a later pull brings one.

A download goes to a temporary folder, is loaded and checked off the event loop, and is swapped
in as ``PUT /model`` does it (``api_model.load_model`` and ``serve_model``): conversations stay.
A bad file or a failed pull leaves the served model as it is; the cause is logged once (at
WARNING, then at DEBUG while it lasts), without the token or other credentials. A model loaded
with ``PUT /model`` (or unloaded with ``DELETE /model``) stays so until the model server answers
with a new ETag, whose file is then loaded even where it is the one pulled before.

``PUT /model`` with Rasa's ``{"model_server": {...}}`` (the same keys) switches to another model
server at run time (``ModelPulls.switch``): its model is pulled and served at once, and it is
followed from then on instead of the one before; if it brings no model, nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from chatbot.errors import ConfigError, ModelFileError
from chatbot.project.endpoints import EndpointBlock, url_problem
from chatbot.ranges import finite_number
from chatbot.server.api_model import load_model, serve_model
from chatbot.server.keys import AGENT, METRICS, SETTINGS

logger = logging.getLogger(__name__)

DEFAULT_WAIT = 100.0  # Rasa's wait_time_between_pulls when the key is not given
DEFAULT_TIMEOUT = 60.0
_KNOWN_KEYS = frozenset(
    {"url", "token", "token_name", "params", "headers", "basic_auth"}
    | {"wait_time_between_pulls", "timeout"}
)
_CHUNK = 1 << 16
# Why a model server's answer brought no model, by status (others: "answered <status>").
_STATUS_PROBLEMS = {
    401: "refused the request (401): check the token",
    403: "refused the request (403): check the token",
    404: "has no model at this URL (404)",
}


@dataclass(frozen=True)
class ModelServer:
    """endpoints.yml's ``models:`` block, checked."""

    url: str
    # The query (the token included) and headers of every request.
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    # Seconds between pulls; None: one pull, at startup.
    wait_time_between_pulls: float | None = DEFAULT_WAIT
    timeout: float = DEFAULT_TIMEOUT
    # What a log line must not show (token, password, header values).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_block(cls, block: EndpointBlock) -> ModelServer:
        """A mistake in the block is a ConfigError naming the file, the line and the key."""
        where = block.origin.prefix
        params = block.params
        block.warn_unknown_keys(_KNOWN_KEYS)
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}{block.name} needs 'url' (the model server's URL of the model, http:// "
                f"or https://), not {url!r}"
            )
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(f"{where}{block.name}: 'url' {url!r} {problem}")
        parts = urlsplit(url)
        query = block.query()
        headers = block.request_headers()  # basic_auth as its Authorization header
        basic_auth = block.basic_auth()
        secrets: list[str | None] = [*headers.values(), parts.password]
        secrets += [value for _, value in parse_qsl(parts.query)]
        if params.get("token"):
            secrets.append(str(params["token"]))
        if basic_auth:
            secrets.append(basic_auth[1])
        return cls(
            url,
            params=query,
            headers=headers,
            basic_auth=basic_auth,
            wait_time_between_pulls=_wait_time(params, f"{where}{block.name}"),
            timeout=_timeout(params, f"{where}{block.name}"),
            secrets=tuple(s for s in secrets if s),
        )

    def describe(self) -> str:
        """The URL for log lines and ``/status``: without a query or user information."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _number(value: Any) -> float | None:
    """``value`` as a finite number (a string from ``${ENV}`` too); None when it is none."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return finite_number(value)


def _wait_time(params: dict[str, Any], block: str) -> float | None:
    value = params.get("wait_time_between_pulls", DEFAULT_WAIT)
    if value is None:
        return None
    seconds = _number(value)
    if seconds is None or seconds < 0:
        raise ConfigError(
            f"{block}: 'wait_time_between_pulls' must be a number of seconds >= 0, or null to "
            f"pull only once; not {value!r:.40}"
        )
    return seconds or None  # 0: no pulls after the first, as in Rasa


def _timeout(params: dict[str, Any], block: str) -> float:
    value = params.get("timeout", DEFAULT_TIMEOUT)
    seconds = _number(value)
    if seconds is None or seconds <= 0:
        raise ConfigError(f"{block}: 'timeout' must be a positive number, not {value!r:.40}")
    return seconds


class ModelPuller:
    """Pulls one application's model from its model server: once at startup (``start``, from
    ``ModelPulls.lifecycle``) or when ``PUT /model`` names the server (``ModelPulls.switch``),
    then every ``wait_time_between_pulls`` seconds in a task."""

    def __init__(
        self, app: web.Application, server: ModelServer, turn: asyncio.Lock | None = None
    ) -> None:
        self.app = app
        self.server = server
        # One pull at a time among an application's pullers (``ModelPulls.switch``).
        self._turn = turn or asyncio.Lock()
        self.etag: str | None = None  # the served model's, sent as If-None-Match
        self.pulls = 0  # requests finished, whatever their outcome
        self.loads = 0  # models from the server swapped in
        self._digest: str | None = None  # sha256 of the served model's file
        self._problem: str | None = None  # the last problem logged at WARNING
        self._pulled = asyncio.Condition()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def replaced_elsewhere(self) -> None:
        """The API replaced or unloaded the served model: the server's next file (under a new
        ETag) is loaded even if it is the file pulled before."""
        self._digest = None

    @property
    def problem(self) -> str | None:
        """Why the last pull brought no model (None: it answered)."""
        return self._problem

    async def start(self) -> None:
        """The first pull (at startup), then the pulls every ``wait_time_between_pulls``."""
        self.open()
        await self.pull()
        if not self.app[AGENT].is_ready:
            logger.warning(
                "no model is served until the model server %s sends one",
                self.server.describe(),
            )
        self.follow()

    def open(self) -> None:
        self._session = aiohttp.ClientSession(
            headers=dict(self.server.headers),
            timeout=aiohttp.ClientTimeout(total=self.server.timeout),
        )

    def follow(self) -> None:
        """Pull every ``wait_time_between_pulls`` seconds from now on (none: no more pulls)."""
        wait = self.server.wait_time_between_pulls
        if wait is not None and self._task is None:
            self._task = asyncio.create_task(self._pull_every(wait), name="model pulls")

    def stop_following(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_for_pulls(self, count: int) -> None:
        """Until ``count`` pulls have finished since startup (the first one included)."""
        async with self._pulled:
            await self._pulled.wait_for(lambda: self.pulls >= count)

    async def _pull_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.pull()
            except Exception as exc:  # a bug here must not end the pulls
                logger.error(
                    "pulling the model from %s failed: %s",
                    self.server.describe(),
                    self.server.redact(repr(exc)),
                )

    async def pull(self) -> bool:
        """One request to the model server; True when it brought a new model, now served."""
        async with self._turn:
            return await self.pull_in_turn()

    async def pull_in_turn(self) -> bool:
        """``pull`` where the caller holds the pullers' turn."""
        outcome = "failed"
        try:
            new = await self._pull()
            if new or self._problem is None:
                outcome = "new_model" if new else "unchanged"
            return new
        finally:
            if METRICS in self.app:
                self.app[METRICS].model_pulls.labels(outcome).inc()
            async with self._pulled:
                self.pulls += 1
                self._pulled.notify_all()

    async def _pull(self) -> bool:
        assert self._session is not None, "pull() before start()"
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with tempfile.TemporaryDirectory(prefix="chatbot-model-") as folder:
            target = Path(folder) / "pulled.model"
            try:
                async with self._session.get(
                    self.server.url, params=dict(self.server.params), headers=headers
                ) as answer:
                    if answer.status in (204, 304):
                        logger.debug("the model server has no new model (%s)", answer.status)
                        self._answers()
                        return False
                    if answer.status != 200:
                        problem = _STATUS_PROBLEMS.get(answer.status, f"answered {answer.status}")
                        return self._failed(problem)
                    etag = answer.headers.get("ETag")
                    digest = await self._download(answer, target)
            except TimeoutError:
                return self._failed(f"gave no model within {self.server.timeout:g} s")
            except (aiohttp.ClientError, OSError) as exc:
                return self._failed(f"cannot be reached ({self.server.redact(str(exc))})")
            except ModelFileError as exc:  # too large
                return self._failed(str(exc))
            if digest == self._digest:  # the served file, under another ETag or none
                self.etag = etag
                self._answers()
                return False
            try:
                model = await load_model(target)
            except ModelFileError as exc:
                message = str(exc).replace(str(target), "the downloaded file")
                return self._failed(f"sent a file that is not a valid model ({message})")
        serve_model(self.app, model, self.server.describe())
        logger.debug("the model server's model has ETag %s", etag)
        self.etag, self._digest = etag, digest
        self.loads += 1
        self._answers()
        return True

    async def _download(self, answer: aiohttp.ClientResponse, target: Path) -> str:
        """The answer's body written to ``target``; its sha256."""
        limit = self.app[SETTINGS].max_model_bytes
        too_large = ModelFileError(f"sent a file larger than {limit} bytes (max_model_bytes)")
        if answer.content_length is not None and answer.content_length > limit:
            raise too_large
        digest = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            async for chunk in answer.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def _failed(self, problem: str) -> bool:
        """Log why a pull brought no model: at WARNING when the problem is new."""
        served = self.app[AGENT].is_ready
        level = logging.WARNING if problem != self._problem else logging.DEBUG
        logger.log(
            level,
            "model server %s %s; %s",
            self.server.describe(),
            problem,
            "the model being served stays" if served else "no model is served",
        )
        self._problem = problem
        return False

    def _answers(self) -> None:
        if self._problem is not None:
            logger.info("model server %s answers again", self.server.describe())
            self._problem = None


class ModelServerFailed(Exception):
    """The model server a ``PUT /model`` names brought no model; the message says why."""


class ModelPulls:
    """An application's model server, if it has one: endpoints.yml's ``models:`` from startup,
    or the one a ``PUT /model`` names (Rasa's ``model_server``), which takes its place."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.puller: ModelPuller | None = None
        self._turn = asyncio.Lock()
        self._closed = False

    def configure(self, server: ModelServer) -> None:
        """The model server of endpoints.yml, first pulled when the application starts."""
        self.puller = ModelPuller(self.app, server, self._turn)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """A ``cleanup_ctx`` entry: the first pull before the server accepts connections."""
        if self.puller is not None:
            await self.puller.start()
        try:
            yield
        finally:
            self._closed = True
            if self.puller is not None:
                await self.puller.close()

    def replaced_elsewhere(self) -> None:
        if self.puller is not None:
            self.puller.replaced_elsewhere()

    async def switch(self, server: ModelServer) -> None:
        """Serve ``server``'s model now and follow it from now on, in place of the model server
        followed so far. If it brings no model (``ModelServerFailed``), nothing changes."""
        if self._closed:
            raise ModelServerFailed("the server is stopping")
        new = ModelPuller(self.app, server, self._turn)
        async with self._turn:  # no pull of the old server's lands in between
            new.open()
            try:
                brought = await new.pull_in_turn()
            except BaseException:
                await new.close()
                raise
            if not brought:
                await new.close()
                problem = new.problem or "sent no model"
                raise ModelServerFailed(f"model server {server.describe()} {problem}")
            old, self.puller = self.puller, new
            if old is not None:
                old.stop_following()
        new.follow()
        if old is not None:
            await old.close()
        if self._closed:  # the server stopped meanwhile
            await new.close()


MODEL_PULLS = web.AppKey("model_pulls", ModelPulls)
