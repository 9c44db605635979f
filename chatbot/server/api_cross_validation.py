"""Rasa's ``POST /model/test/intents?cross_validation_folds=N``: the body's NLU data
cross-validated in N folds with the body's config (its ``pipeline``, ``language``, ... beside
``nlu:``, as Rasa's YAML payload holds them; the default pipeline where it has none). The served
model is not used.

The folds are trained by ``chatbot test nlu --folds N`` in a process of its own, as
``POST /model/train`` trains, and share its one-at-a-time lock (``/status``'s
``num_active_training_jobs`` counts them). The answer is Rasa's: ``intent_evaluation``
(``report``, ``accuracy``, ``precision``, ``f1_score``, ``errors``), ``entity_evaluation`` per
extractor and ``response_selection_evaluation`` over the held-out examples of every fold, plus
``cross_validation`` (each fold's scores, their mean and standard deviation). A mistake in the
data is a 400 naming the body's line; a JSON body is a 400, as Rasa cross-validates YAML only.
``?callback_url=`` answers at once and posts the result later (``chatbot.server.answer_later``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from chatbot.errors import ProjectError
from chatbot.project.yaml_io import load_yaml_text, to_plain
from chatbot.server.answer_later import answer_now_or_later
from chatbot.server.api_train import TRAINING_JOBS, run_process
from chatbot.server.bodies import read_large_body
from chatbot.server.errors import json_error

MAX_CV_DATA = 16 * 1024 * 1024


async def cross_validation(request: web.Request, folds: int) -> web.Response:
    if request.content_type == "application/json":
        raise json_error(
            400,
            "cross-validation takes YAML (the config's keys beside nlu:), not JSON, as Rasa's",
            "TestingError",
        )
    data = await read_large_body(request, MAX_CV_DATA, "test data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise json_error(400, "the test data is not UTF-8 text") from None
    try:
        body = to_plain(load_yaml_text(text, file="the body"))
    except ProjectError as error:
        raise json_error(400, str(error)) from None
    if not isinstance(body, dict) or not body.get("nlu"):
        raise json_error(400, "the body holds no NLU examples (nlu: with intents and examples)")
    jobs = request.app[TRAINING_JOBS]

    async def work() -> web.Response:
        jobs.active += 1
        try:
            async with jobs.lock:
                found = await _cross_validated(text, folds)
        finally:
            jobs.active -= 1
        return web.json_response(found)

    return await answer_now_or_later(request, work, "cross-validation")


async def _cross_validated(text: str, folds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatbot-cv-") as tmp:
        root = Path(tmp)
        # The body as both files (each reader takes its keys), named as /model/train names the
        # body's parts: an error says "the body's config:3" or "the body's data:7", its line.
        (root / "config.yml").write_text(text)
        (root / "data").mkdir()
        (root / "data" / "training.yml").write_text(text)
        out = root / "results"
        command = [
            *(sys.executable, "-m", "chatbot", "test", "nlu", "--project", tmp),
            *("--config", str(root / "config.yml"), "--nlu", str(root / "data" / "training.yml")),
            *("--folds", str(folds), "--out", str(out), "--no-plot"),
        ]
        await run_process(command, tmp, "cross-validation", "TestingError", "TestingFailed")
        return await asyncio.to_thread(_results, out)


def _results(out: Path) -> dict[str, Any]:
    """The reports ``chatbot test nlu`` wrote, in the shape of Rasa's answer."""

    def read(name: str) -> Any:
        path = out / name
        return json.loads(path.read_text()) if path.is_file() else None

    intents = read("intent_report.json") or {}
    averages = intents.get("weighted avg", {})
    entities = {}
    for path in sorted(out.glob("*_report.json")):
        extractor = path.name[: -len("_report.json")]
        if extractor in ("intent", "response_selection"):
            continue
        report = read(path.name)
        overall = report.get("micro avg", {})
        entities[extractor] = {
            "report": report,
            "precision": overall.get("precision"),
            "f1_score": overall.get("f1-score"),
            "errors": read(f"{extractor}_errors.json") or [],
        }
    responses = read("response_selection_report.json")
    return {
        "intent_evaluation": {
            "report": intents,
            "accuracy": intents.get("accuracy"),
            "precision": averages.get("precision"),
            "f1_score": averages.get("f1-score"),
            "errors": read("intent_errors.json") or [],
        },
        "entity_evaluation": entities,
        "response_selection_evaluation": None
        if responses is None
        else {
            "report": responses,
            "accuracy": responses.get("accuracy"),
            "precision": responses.get("weighted avg", {}).get("precision"),
            "f1_score": responses.get("weighted avg", {}).get("f1-score"),
            "errors": read("response_selection_errors.json") or [],
        },
        "cross_validation": read("cross_validation.json"),
    }
