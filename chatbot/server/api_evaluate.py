"""Rasa's ``POST /model/test/intents`` and ``POST /model/test/stories``: the served model on the
test data in the request's body (YAML; Rasa's NLU JSON for intents sent as application/json),
the scores in the answer (``?e2e=true``: stories end to end).

``/model/test/intents`` takes NLU data (``nlu:``, as nlu.yml holds it) and answers Rasa's shape:
``intent_evaluation`` (``report``, ``accuracy``, ``f1_score``, ``precision``, ``predictions``,
``errors``), ``entity_evaluation`` per extractor and, with retrieval intents,
``response_selection_evaluation``; with ``?callback_url=`` the request is answered at once
with 204 and the evaluation is POSTed to that URL (``chatbot.server.answer_later``), as Rasa's.
``/model/test/stories`` takes test stories (``stories:``,
``rules:``, as tests/test_*.yml hold them) and answers the story report of ``chatbot test``
(``report`` with the per-action scores and ``conversation_accuracy``, ``accuracy``, ``f1``,
``precision``, ``failed_stories``). The work runs in a thread: messages keep being answered.
A mistake in the body is a 400 naming its line. ``?model=PATH`` tests that model file instead of
the served one; ``?cross_validation_folds=N`` cross-validates the body's NLU data
(``chatbot.server.api_cross_validation``).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from chatbot.errors import ChatbotError, ProjectErrors
from chatbot.ranges import whole_number
from chatbot.server.answer_later import answer_now_or_later, callback_url
from chatbot.server.auth import Auth
from chatbot.server.bodies import read_large_body
from chatbot.server.errors import json_error
from chatbot.server.keys import AGENT

MAX_TEST_DATA = 16 * 1024 * 1024


def register_evaluation_routes(app: web.Application, auth: Auth) -> None:
    app.router.add_post("/model/test/intents", auth.protect(test_intents))
    app.router.add_post("/model/test/stories", auth.protect(test_stories))


async def _tested_model(request: web.Request) -> Any:
    """The served model, or the model file ``?model=`` names (a path on the server, as ``PUT
    /model``'s ``model_file``: relative to the folder the server was started in), loaded for
    this request alone: the served model stays."""
    from chatbot.server.api_model import load_model_file

    name = request.query.get("model")
    if not name:
        return request.app[AGENT].model
    if "://" in name:
        raise json_error(
            400, f"model {name!r}: a model server's URL is not served here; give a file's path"
        )
    return await load_model_file(Path(name))


async def test_intents(request: web.Request) -> web.Response:
    from chatbot.nlu.model import NLUModel
    from chatbot.project.nlu_json import read_rasa_json
    from chatbot.project.nlu_reader import read_nlu

    callback_url(request)  # a bad one is refused before the body is read
    folds = _folds(request)
    if folds is not None:  # the body's data and config, not the served model
        from chatbot.server.api_cross_validation import cross_validation

        return await cross_validation(request, folds)
    model = await _tested_model(request)
    if not isinstance(model.nlu, NLUModel):
        raise json_error(409, "the served model has no NLU model to test", "NoNLUModel")
    nlu_model = model.nlu
    # As Rasa: YAML where the Content-Type says so, else Rasa's NLU JSON (rasa_nlu_data).
    as_json = request.content_type == "application/json"
    data = await _read_body(request, read_rasa_json if as_json else read_nlu, as_json=as_json)
    if not data.examples:
        raise json_error(400, "the body holds no NLU examples (nlu: with intents and examples)")

    async def work() -> web.Response:
        found = await asyncio.to_thread(_intent_evaluation, nlu_model, data.examples)
        return web.json_response(found)

    return await answer_now_or_later(request, work, "evaluation")


def _folds(request: web.Request) -> int | None:
    value = request.query.get("cross_validation_folds")
    if not value:  # absent or empty: no cross-validation, as Rasa reads it
        return None
    folds = whole_number(value)
    if folds is None or folds < 2:
        raise json_error(
            400, f"cross_validation_folds must be a whole number from 2, not {value!r}"
        )
    return folds


async def test_stories(request: web.Request) -> web.Response:
    from chatbot.project.story_reader import read_stories

    end_to_end = request.query.get("e2e", "false").lower() == "true"
    model = await _tested_model(request)
    if request.content_type == "application/json":
        raise json_error(415, "send the test stories as YAML (Content-Type: application/yaml)")
    stories, rules = await _read_body(request, lambda path: read_stories(path, test=True))
    if not stories and not rules:
        raise json_error(400, "the body holds no test stories (stories: or rules:)")
    found = await asyncio.to_thread(_story_evaluation, model, stories + rules, end_to_end)
    return web.json_response(found)


async def _read_body(request: web.Request, read: Any, *, as_json: bool = False) -> Any:
    """The body, read by ``read`` as a file of the project would be (YAML whatever the
    Content-Type says, as Rasa reads it, unless ``as_json``); a 400 naming the line of a
    mistake (the body, not a temporary file, named)."""
    data = await read_large_body(request, MAX_TEST_DATA, "test data")
    with tempfile.TemporaryDirectory(prefix="chatbot-test-") as folder:
        path = Path(folder) / ("body.json" if as_json else "body.yml")
        path.write_bytes(data)
        try:
            return read(path)
        except ProjectErrors as errors:
            raise json_error(400, str(errors).replace(str(path), "the body")) from None
        except ChatbotError as error:
            raise json_error(400, str(error).replace(str(path), "the body")) from None


def _intent_evaluation(model: Any, examples: list[Any]) -> dict[str, Any]:
    from training.nlu.evaluate import extractors_of, predict, score

    predictions = predict(model, examples)
    scores = score(examples, predictions, extractors_of(model, predictions))
    report: dict[str, Any] = scores.intent_report
    result: dict[str, Any] = {
        "intent_evaluation": {
            "report": report,
            "accuracy": report["accuracy"],
            "f1_score": report["weighted avg"]["f1-score"],
            "precision": report["weighted avg"]["precision"],
            "predictions": [
                {
                    "text": e.text,
                    "intent": t,
                    "predicted": p,
                    "confidence": c,
                }
                for e, t, p, c in zip(
                    examples,
                    scores.intent_targets,
                    scores.intent_predictions,
                    scores.confidences,
                    strict=True,
                )
            ],
            "errors": scores.intent_errors,
        },
        "entity_evaluation": {
            extractor: _entity_evaluation(entity_report, scores.entity_errors[extractor])
            for extractor, entity_report in scores.entity_reports.items()
        },
    }
    result["response_selection_evaluation"] = (
        None
        if scores.response_report is None
        else {
            "report": scores.response_report,
            "accuracy": scores.response_report["accuracy"],
            "errors": scores.response_errors,
        }
    )
    return result


def _entity_evaluation(report: dict[str, Any], errors: list[Any]) -> dict[str, Any]:
    overall = report.get("micro avg", {})
    return {
        "report": report,
        "f1_score": overall.get("f1-score"),
        "precision": overall.get("precision"),
        "errors": errors,
    }


def _story_evaluation(model: Any, stories: list[Any], end_to_end: bool) -> dict[str, Any]:
    from training.evaluate import evaluate_stories, failed_stories_yaml

    evaluation = evaluate_stories(model, stories, end_to_end=end_to_end)
    report = evaluation.report()
    return {
        "report": report,
        "accuracy": evaluation.action_accuracy,
        "f1": report["weighted avg"]["f1-score"],
        "precision": report["weighted avg"]["precision"],
        "conversation_accuracy": evaluation.conversation_accuracy,
        "failed_stories": failed_stories_yaml(evaluation.results),
    }
