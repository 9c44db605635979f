"""The HTTP API's model routes: ``/status``, ``/domain``, ``POST /model/parse``,
``POST /model/predict``, ``PUT /model`` and ``DELETE /model``.

``PUT /model`` takes ``{"model_file": "<path on the server>"}`` (as Rasa), Rasa's
``{"model_server": {"url": ...}}`` (that server's model, and the server followed from then on;
``chatbot.server.model_pull``) or the model file itself as the body (``Content-Type:
application/octet-stream``). The new model answers the next messages;
conversations stay in the store, and messages in flight finish with the model they started with.
``DELETE /model`` unloads the model: until ``PUT /model`` loads one, whatever needs it answers a
409 (a channel's message a 503) saying that no model is loaded. Under ``chatbot run --workers``
both reach every worker, and are answered once every worker serves the change
(``chatbot.server.worker_sync``).

``load_model`` and ``serve_model`` are how any model is loaded and swapped in at run time:
``PUT /model`` and the pulls from a model server (``model_pull``) share them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from chatbot.agent import TrainedModel, __version__
from chatbot.errors import ConfigError, ModelFileError
from chatbot.json_input import loads
from chatbot.project.domain import Origin
from chatbot.project.domain_reader import domain_to_dict
from chatbot.project.endpoints import EndpointBlock
from chatbot.server.api import predict_from_events
from chatbot.server.auth import Auth
from chatbot.server.bodies import body_timeout, body_too_slow, read_object, string_field
from chatbot.server.emulators import EMULATORS, emulator
from chatbot.server.errors import json_error
from chatbot.server.keys import AGENT, GATE, SETTINGS, WORKER_SYNC
from chatbot.server.limits import check_text_length
from chatbot.server.worker_sync import ModelNotShared, WorkerSync

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16


@dataclass
class ModelStatus:
    """Which model file is served (changed by ``PUT /model``)."""

    file: str | None = None


MODEL_STATUS = web.AppKey("model_status", ModelStatus)


def register_model_routes(app: web.Application, auth: Auth, model_file: str | None) -> None:
    app[MODEL_STATUS] = ModelStatus(model_file)
    app.router.add_get("/status", auth.protect(status))
    app.router.add_get("/domain", auth.protect(domain))
    app.router.add_post("/model/parse", auth.protect(parse))
    app.router.add_put("/model", auth.protect(replace_model))
    app.router.add_delete("/model", auth.protect(unload_model))
    # The next action after posted events (``chatbot.server.api``, beside ``.../predict``).
    app.router.add_post("/model/predict", auth.protect(predict_from_events))
    from chatbot.server.answer_later import register_later_answers
    from chatbot.server.api_evaluate import register_evaluation_routes
    from chatbot.server.api_train import register_train_route

    register_later_answers(app)
    register_train_route(app, auth)
    register_evaluation_routes(app, auth)


async def status(request: web.Request) -> web.Response:
    """The loaded model; 409 (Rasa's Conflict) when none is, so a readiness check sees it."""
    agent = request.app[AGENT]
    return web.json_response(
        {
            "model_file": request.app[MODEL_STATUS].file,
            "model_id": agent.model.meta.get("fingerprint"),  # NoModelLoaded: the 409
            "num_active_training_jobs": _training_jobs(request.app),
            "version": __version__,
        }
    )


def _training_jobs(app: web.Application) -> int:
    from chatbot.server.api_train import TRAINING_JOBS

    return app[TRAINING_JOBS].active if TRAINING_JOBS in app else 0


async def domain(request: web.Request) -> web.Response:
    """The domain as JSON, or as YAML for ``Accept: application/yaml``."""
    accept = request.headers.get("Accept", "application/json").lower()
    data = domain_to_dict(request.app[AGENT].domain)
    if "json" in accept or "*/*" in accept:
        return web.json_response(data)
    if "yaml" in accept or "yml" in accept:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return web.Response(text=text, content_type="application/x-yaml")
    raise json_error(406, "the domain is served as application/json or application/yaml")


async def parse(request: web.Request) -> web.Response:
    """The NLU's parse of ``text`` (Rasa's format, or another service's with
    ``?emulation_mode=wit|luis|dialogflow``)."""
    mode = request.query.get("emulation_mode")
    formatter = emulator(mode) if mode else None
    if mode and formatter is None:
        known = ", ".join(EMULATORS)
        raise json_error(400, f"emulation_mode {mode!r} is not known; use one of {known}")
    body = await read_object(request)
    text = string_field(body, "text")
    assert text is not None
    check_text_length(text, request.app[GATE].max_message_chars)
    result = dict(await request.app[AGENT].parse(text))
    result.setdefault("text", text)
    message_id = string_field(body, "message_id", required=False)
    if message_id is not None:
        result["message_id"] = message_id
    return web.json_response(formatter(result) if formatter else result)


async def replace_model(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    sync = request.app.get(WORKER_SYNC)
    if request.content_type == "application/json":
        return await _replace_as_json_says(request.app, await read_object(request))
    with tempfile.TemporaryDirectory(prefix="chatbot-model-") as folder:
        upload = Path(folder) / "upload.model"
        await _receive(request, upload, settings.max_model_bytes)
        head = upload.read_bytes()[:1].strip() if upload.stat().st_size < _JSON_AT_MOST else b""
        if head == b"{":  # Rasa's JSON body sent with another content type (curl -d)
            try:
                body = loads(upload.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise json_error(400, "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise json_error(400, "the request body must be a JSON object")
            return await _replace_as_json_says(request.app, body)
        try:
            model = await load_model_file(upload)
        except ModelFileError as exc:
            message = str(exc).replace(str(upload), "the uploaded body")
            raise json_error(400, message, "BadModel") from None
        path = upload
        if sync is not None:  # kept for the other workers to load
            path = sync.uploads / f"{uuid.uuid4().hex}.model"
            shutil.move(upload, path)
    return await _serve_everywhere(request.app, model, "uploaded model", path)


async def _replace_as_json_says(app: web.Application, body: dict[str, Any]) -> web.Response:
    """Rasa's JSON body: a ``model_server`` to follow, else a ``model_file`` on the server."""
    if body.get("model_server"):  # as Rasa reads it: null or {} is none
        return await _follow_model_server(app, body)
    path = Path(_model_file_of(body))
    return await _serve_everywhere(app, await load_model_file(path), str(path), path)


async def _serve_everywhere(
    app: web.Application, model: TrainedModel, source: str, path: Path
) -> web.Response:
    """Serve ``model``; under ``--workers``, answer once every worker serves it."""
    apply_model(app, model, source)
    sync = app.get(WORKER_SYNC)
    if sync is not None:
        await _share(sync, path, source)
    return web.Response(status=204)


def apply_model(app: web.Application, model: TrainedModel | None, source: str) -> None:
    """Serve ``model`` (None: unload the model) as the API asks; a model server's puller, where
    there is one, learns that the model changed elsewhere."""
    if model is None:
        app[AGENT].unload_model()
        if MODEL_STATUS in app:
            app[MODEL_STATUS].file = None
        logger.info("model unloaded: no model is served until PUT /model")
    else:
        serve_model(app, model, source)
    _tell_the_puller(app)


async def _share(sync: WorkerSync, path: Path | None, source: str) -> None:
    """Under ``chatbot run --workers``: answer once every worker serves the change."""
    try:
        await sync.share_model(path, source)
    except ModelNotShared as exc:
        if exc.superseded:
            raise json_error(409, str(exc), "Conflict") from None
        raise json_error(503, f"this worker serves the change, but {exc}") from None


def serve_model(app: web.Application, model: TrainedModel, source: str) -> None:
    """Answer the next messages with ``model`` (PUT /model, a model server's new model);
    conversations stay in the store, messages in flight finish with the model they started with."""
    app[AGENT].replace_model(model)
    if MODEL_STATUS in app:  # the HTTP API is on
        app[MODEL_STATUS].file = source
    logger.info("serving a new model: %s", source)


# A body this small that starts with "{" is JSON, not a model file (those are far larger).
_JSON_AT_MOST = 64 * 1024


def _model_file_of(body: dict[str, Any]) -> str:
    _no_remote_storage(body)
    path = string_field(body, "model_file")
    assert path is not None
    return path


def _no_remote_storage(body: dict[str, Any]) -> None:
    if body.get("remote_storage"):
        raise json_error(
            400,
            "remote_storage: cloud model storage is not provided; send 'model_file' or "
            "'model_server'",
        )


async def _follow_model_server(app: web.Application, body: dict[str, Any]) -> web.Response:
    """Rasa's ``{"model_server": {"url": ..., ...}}``: the model that server sends is served at
    once, and the server is followed from then on (every ``wait_time_between_pulls`` seconds,
    100 by default, as in Rasa) instead of endpoints.yml's ``models:``. A ``model_file`` beside
    it is not used (Rasa's order)."""
    from chatbot.server.model_pull import MODEL_PULLS, ModelServer, ModelServerFailed

    _no_remote_storage(body)
    if app.get(WORKER_SYNC) is not None:
        raise json_error(
            400,
            "model_server: not supported under chatbot run --workers (every worker follows "
            "endpoints.yml's models:); send 'model_file' or the model file",
        )
    value = body["model_server"]
    if not isinstance(value, dict):
        raise json_error(
            400,
            "'model_server' must be an object (Rasa's endpoint: url, params, headers, "
            f"basic_auth, token, wait_time_between_pulls), not {type(value).__name__}",
        )
    block = EndpointBlock("model_server", value, Origin("the request body"))
    try:
        server = ModelServer.from_block(block)
    except ConfigError as exc:
        raise json_error(400, str(exc)) from None
    try:
        await app[MODEL_PULLS].switch(server)
    except ModelServerFailed as exc:
        served = "the model being served stays" if app[AGENT].is_ready else "no model is served"
        raise json_error(502, f"{exc}; {served}", "ModelServerError") from None
    return web.Response(status=204)


async def unload_model(request: web.Request) -> web.Response:
    apply_model(request.app, None, "DELETE /model")
    sync = request.app.get(WORKER_SYNC)
    if sync is not None:
        await _share(sync, None, "DELETE /model")
    return web.Response(status=204)


def _tell_the_puller(app: web.Application) -> None:
    """A model server's puller, where there is one, learns that the API changed the model."""
    from chatbot.server.model_pull import MODEL_PULLS  # it imports this module

    if MODEL_PULLS in app:
        app[MODEL_PULLS].replaced_elsewhere()


async def load_model_file(path: Path) -> TrainedModel:
    """The model file at ``path`` on the server, loaded and checked; a 400 where there is none
    (a file that is not a valid model raises ``ModelFileError``: a 400 too)."""
    if not path.is_file():
        raise json_error(400, f"no model file at {str(path)!r} on the server")
    return await load_model(path)


async def load_model(path: Path) -> TrainedModel:
    """Load and check a model file off the event loop: conversations keep being answered
    meanwhile. A file that is not a valid model raises ``ModelFileError``."""
    return await asyncio.to_thread(TrainedModel.from_file, path)


async def _receive(request: web.Request, target: Path, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise json_error(413, f"the model file is larger than {limit} bytes")
    size = 0
    seconds = body_timeout(request)
    with open(target, "wb") as out:
        while True:
            try:  # a deadline for each chunk: a large model may take minutes, a stalled one not
                chunk = await asyncio.wait_for(request.content.read(_CHUNK), seconds)
            except asyncio.TimeoutError:
                raise body_too_slow(seconds) from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise json_error(413, f"the model file is larger than {limit} bytes")
            out.write(chunk)
    if size == 0:
        raise json_error(
            400, "send {'model_file': path} as JSON, or the model file as the request body"
        )
