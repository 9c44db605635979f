"""The HTTP API's conversation routes, with Rasa's paths, parameters and payloads.

``GET /conversations/{id}/tracker``, ``GET .../story``, ``POST|PUT .../tracker/events``,
``POST .../messages``, ``.../trigger_intent``, ``.../predict`` and ``.../execute``. Differences
from Rasa: a conversation that has no events is a 404 for ``GET .../story`` and ``.../predict``
(``GET .../tracker`` shows a new session, as Rasa's, without storing it); ``PUT .../tracker/events``
cannot erase stored events (the store only appends), so it appends a ``restart`` and then the new
events: the default view (``include_events=AFTER_RESTART``) shows exactly the new events. Posted
events' side effects (``execute_side_effects=true``) are reminders scheduled and bot messages sent
through ``?output_channel=``, as in Rasa.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from aiohttp import web

from chatbot.agent import Agent
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import validate_event, validate_events
from chatbot.conversation.messages import (
    EXTERNAL_MESSAGE_PREFIX,
    UserMessage,
    bot_messages,
    collected,
)
from chatbot.processor import TurnResult
from chatbot.server.auth import Auth
from chatbot.server.bodies import kind, object_field, read_json, read_object, string_field
from chatbot.server.errors import json_error
from chatbot.server.gate import MessageGate
from chatbot.server.keys import AGENT, GATE, OUTPUTS
from chatbot.server.limits import check_text_length
from chatbot.server.outputs import deliver
from chatbot.server.story import stories_yaml
from chatbot.store.base import MAX_CONVERSATION_ID_LENGTH, conversation_id_text_problem

API_CHANNEL = "api"
# ``?output_channel=latest``: the channel of the conversation's latest user message.
LATEST_CHANNEL = "latest"
VERBOSITIES = ("ALL", "APPLIED", "AFTER_RESTART", "NONE")
PREDICT_SENDER = "default"  # the conversation id of ``POST /model/predict``'s tracker, as Rasa's


def register_conversation_routes(app: web.Application, auth: Auth) -> None:
    base = "/conversations/{conversation_id:.+}"  # as Rasa's ``<conversation_id:path>``: "/" too
    routes = [
        ("GET", f"{base}/tracker", get_tracker),
        ("GET", f"{base}/story", get_story),
        ("POST", f"{base}/tracker/events", append_events),
        ("PUT", f"{base}/tracker/events", replace_events),
        ("POST", f"{base}/messages", add_message),
        ("POST", f"{base}/trigger_intent", trigger_intent),
        ("POST", f"{base}/predict", predict),
        ("POST", f"{base}/execute", execute),
    ]
    for method, path, handler in routes:
        counted = None if method == "GET" else _count_users_write
        app.router.add_route(method, path, auth.protect(handler, scoped=True, as_user=counted))


def _count_users_write(request: web.Request) -> None:
    """A JWT ``user`` role writes to its own conversation as a channel's user sends messages:
    each call counts against the per-sender rate limit (the conversation) and the per-client
    one, as a message on a channel does (a 429 beyond them). The token and ``admin`` are the
    bot's operators, and an open API listens on 127.0.0.1 only: neither is limited."""
    gate = request.app[GATE]
    gate.admit(conversation_id_of(request), None, gate.client_of(request))


def conversation_id_of(request: web.Request) -> str:
    conversation_id = request.match_info["conversation_id"]
    if not conversation_id or len(conversation_id) > MAX_CONVERSATION_ID_LENGTH:
        raise json_error(400, f"a conversation id has 1 to {MAX_CONVERSATION_ID_LENGTH} characters")
    problem = conversation_id_text_problem(conversation_id)
    if problem is not None:
        raise json_error(400, problem)
    return conversation_id


def verbosity_of(request: web.Request) -> str:
    value = request.query.get("include_events", "AFTER_RESTART").upper()
    if value not in VERBOSITIES:
        raise json_error(
            400,
            "invalid value for 'include_events'; use one of " + ", ".join(VERBOSITIES),
        )
    return value


def tracker_json(conversation: Conversation, verbosity: str) -> dict[str, Any]:
    """Rasa's tracker state with the events ``include_events`` asks for."""
    state = conversation.as_tracker()
    if verbosity == "ALL":
        state["events"] = list(conversation.events)
    elif verbosity == "AFTER_RESTART":
        state["events"] = conversation.events_after_latest_restart()
    elif verbosity == "APPLIED":
        state["events"] = conversation.applied_events()
    else:
        state["events"] = None
    return state


def bool_query(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise json_error(400, f"'{name}' must be true or false, not {value!r}")


async def load_events(
    request: web.Request, conversation_id: str, *, all_sessions: bool = True
) -> list[dict[str, Any]]:
    """The conversation's stored events up to ``?until=``; a 404 when it has none."""
    agent = request.app[AGENT]
    until = request.query.get("until")
    limit = None
    if until is not None:
        try:
            limit = float(until)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit):  # "nan" would keep no event, "inf" is no time
            raise json_error(400, "'until' must be a timestamp (seconds since 1970)")
    stored = await agent.store.load(conversation_id, all_sessions=all_sessions)
    if not stored.events:
        raise json_error(404, f"conversation '{conversation_id}' has no events", "NotFound")
    if limit is None:
        return stored.events
    return [e for e in stored.events if _timestamp(e) <= limit]


async def load_conversation(request: web.Request, conversation_id: str) -> Conversation:
    domain = request.app[AGENT].domain  # before the store: no model, no answer
    return Conversation(conversation_id, domain, await load_events(request, conversation_id))


def _timestamp(event: dict[str, Any]) -> float:
    value = event.get("timestamp")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


async def get_tracker(request: web.Request) -> web.Response:
    """The conversation's tracker; for a conversation with no events yet, as Rasa, a new one
    with its session started (shown, not stored: reading does not write)."""
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    agent = request.app[AGENT]
    domain = agent.domain  # before the store: no model, no answer
    if await agent.store.next_seq(conversation_id) == 0:
        conversation = Conversation(conversation_id, domain)
        await agent.processor.start_session_if_needed(conversation, None, None)
    else:
        conversation = await load_conversation(request, conversation_id)
    return web.json_response(tracker_json(conversation, verbosity))


async def get_story(request: web.Request) -> web.Response:
    """The conversation as Rasa YAML stories: its last session, or every session with
    ``?all_sessions=true``; ``?until=`` as for the tracker."""
    conversation_id = conversation_id_of(request)
    all_sessions = bool_query(request, "all_sessions")
    events = await load_events(request, conversation_id, all_sessions=all_sessions)
    return web.Response(
        text=stories_yaml(conversation_id, events), content_type="application/x-yaml"
    )


async def append_events(request: web.Request) -> web.Response:
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    body = await read_json(request)
    events = validate_events(body if isinstance(body, list) else [body], "events")
    agent = request.app[AGENT]
    # Rasa's execute_side_effects: reminders are scheduled and bot messages sent through
    # ?output_channel=; without it the events are only stored.
    side_effects = bool_query(request, "execute_side_effects")
    channel, deliverable = await _output_channel(request, conversation_id)
    result = await agent.processor.append_events(
        conversation_id, events, all_sessions=True, notify=side_effects
    )
    if side_effects and deliverable:
        await _answer_on(request, result, channel, True, verbosity)
    return web.json_response(tracker_json(result.conversation, verbosity))


async def replace_events(request: web.Request) -> web.Response:
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise json_error(400, f"the body must be an array of events, not {kind(body)}")
    events = validate_events(body, "events")
    agent = request.app[AGENT]
    result = await agent.processor.append_events(
        conversation_id, [ev.simple("restart"), *events], all_sessions=True, notify=False
    )
    return web.json_response(tracker_json(result.conversation, verbosity))


async def add_message(request: web.Request) -> web.Response:
    """Log a user message without answering it (Rasa: only ``"sender": "user"``)."""
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    body = await read_object(request)
    text = string_field(body, "text")
    assert text is not None
    sender = body.get("sender")
    if sender != "user":
        raise json_error(
            400,
            "only user messages can be posted here ('sender': 'user'), "
            f"not messages of sender {sender!r}",
        )
    gate = request.app[GATE]
    check_text_length(text, gate.max_message_chars)
    parse_data = object_field(body, "parse_data")
    if parse_data is not None:  # as an event's would be: a 400 naming what is wrong, not a 500
        validate_event({"event": "user", "text": text, "parse_data": parse_data}, "body")
    message = UserMessage(
        text,
        conversation_id,
        string_field(body, "input_channel", required=False, default=API_CHANNEL),
        object_field(body, "metadata") or {},
        string_field(body, "message_id", required=False) or uuid.uuid4().hex,
    )
    agent = request.app[AGENT]
    result = await gate.turn(
        API_CHANNEL,
        conversation_id,
        lambda: agent.processor.log_message(message, parse_data, all_sessions=True),
    )
    return web.json_response(tracker_json(result.conversation, verbosity))


def _entities(value: Any) -> list[dict[str, Any]]:
    """Rasa accepts ``{"entity": "value"}`` or a list of entity objects."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [{"entity": str(k), "value": v} for k, v in value.items()]
    if isinstance(value, list) and all(
        isinstance(e, dict) and isinstance(e.get("entity"), str) for e in value
    ):
        return [dict(e) for e in value]
    raise json_error(
        400, "'entities' must be an object of entity values or a list of entity objects"
    )


async def trigger_intent(request: web.Request) -> web.Response:
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    body = await read_object(request)
    intent = string_field(body, "name")
    agent = request.app[AGENT]
    if intent not in agent.domain.intent_names:
        raise json_error(404, f"The intent {intent!r} does not exist in the domain.", "NotFound")
    assert intent is not None
    entities = _entities(body.get("entities"))
    channel, delivered = await _output_channel(request, conversation_id)
    result = await _turn(
        request,
        conversation_id,
        lambda a: a.processor.trigger_intent(
            conversation_id, intent, entities, channel, all_sessions=True
        ),
    )
    return web.json_response(await _answer_on(request, result, channel, delivered, verbosity))


async def execute(request: web.Request) -> web.Response:
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    body = await read_object(request)
    action = string_field(body, "name")
    agent = request.app[AGENT]
    if action not in agent.domain.action_names:
        raise json_error(404, f"The action {action!r} does not exist in the domain.", "NotFound")
    assert action is not None
    policy = string_field(body, "policy", required=False)
    confidence = body.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float))
    ):
        raise json_error(400, f"'confidence' must be a number, not {kind(confidence)}")
    channel, delivered = await _output_channel(request, conversation_id)
    result = await _turn(
        request,
        conversation_id,
        lambda a: a.processor.execute(
            conversation_id,
            action,
            policy=policy,
            confidence=None if confidence is None else float(confidence),
            channel=channel,
            all_sessions=True,
        ),
    )
    return web.json_response(await _answer_on(request, result, channel, delivered, verbosity))


async def predict(request: web.Request) -> web.Response:
    """The next action, without running it: a score for every action of the domain (highest
    first), the policy that chose and its confidence, and the tracker (as Rasa)."""
    conversation_id = conversation_id_of(request)
    verbosity = verbosity_of(request)
    conversation = await load_conversation(request, conversation_id)
    return web.json_response(prediction_json(request, conversation, verbosity))


async def predict_from_events(request: web.Request) -> web.Response:
    """Rasa's ``POST /model/predict``: the next action after the posted events, as
    ``.../predict`` gives it for a stored conversation, on a conversation that exists only for
    this request (Rasa's sender ``default``): nothing is stored, run or sent."""
    verbosity = verbosity_of(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise json_error(400, f"the body must be an array of events, not {kind(body)}")
    if not body:
        raise json_error(400, "no events in the body: post the events to predict after")
    events = validate_events(body, "events")
    domain = request.app[AGENT].domain  # no model, no answer
    # The LSTM keeps a state per conversation id: this one's is its own, and dropped after.
    scratch = f"{PREDICT_SENDER}\x00{uuid.uuid4().hex}"
    conversation = Conversation(scratch, domain, events)
    try:
        answer = prediction_json(request, conversation, verbosity)
    finally:
        request.app[AGENT].processor.forget(scratch)
    answer["tracker"]["sender_id"] = PREDICT_SENDER
    return web.json_response(answer)


def prediction_json(
    request: web.Request, conversation: Conversation, verbosity: str
) -> dict[str, Any]:
    prediction, scores = request.app[AGENT].processor.scores(conversation)
    ranked = sorted(scores.items(), key=lambda item: -item[1])  # stable: domain order on ties
    return {
        "scores": [{"action": name, "score": score} for name, score in ranked],
        "policy": prediction.policy,
        "confidence": prediction.confidence,
        "tracker": tracker_json(conversation, verbosity),
    }


async def _turn(request: web.Request, conversation_id: str, run: Any) -> TurnResult:
    gate: MessageGate = request.app[GATE]
    agent: Agent = request.app[AGENT]
    return await gate.turn(API_CHANNEL, conversation_id, lambda: run(agent))


async def _output_channel(request: web.Request, conversation_id: str) -> tuple[str, bool]:
    """Rasa's ``?output_channel=``: (the channel the turn is recorded on, whether the bot's
    messages go out through it). A mounted channel that can send without a request (callback,
    socketio, slack, telegram) gets them; ``latest`` is the conversation's latest user message's
    channel. Otherwise the messages come back in the response, as without the parameter."""
    wanted = request.query.get("output_channel")
    if not wanted:
        return API_CHANNEL, False
    if wanted == LATEST_CHANNEL:
        stored = await request.app[AGENT].store.load(conversation_id)
        latest: dict[str, Any] = next(
            (e for e in reversed(stored.events) if e.get("event") == "user"), {}
        )
        found = latest.get("input_channel")
        wanted = found if isinstance(found, str) and found else API_CHANNEL
    return wanted, wanted in request.app[OUTPUTS]


async def _answer_on(
    request: web.Request, result: TurnResult, channel: str, delivered: bool, verbosity: str
) -> dict[str, Any]:
    """The response of a turn run for ``?output_channel=``: its messages were sent through the
    channel (and are left out, as Rasa leaves them out), else they are in the response."""
    conversation_id = result.conversation.sender_id
    if not delivered:
        return _answer(result, conversation_id, verbosity)
    metadata: dict[str, Any] = {}
    for event in reversed(result.conversation.events):
        text = event.get("text")
        if (
            event.get("event") == "user"
            and event.get("input_channel") == channel
            and not (isinstance(text, str) and text.startswith(EXTERNAL_MESSAGE_PREFIX))
        ):
            found = event.get("metadata")
            metadata = found if isinstance(found, dict) else {}
            break
    await deliver(request.app, conversation_id, channel, result.messages(), metadata)
    return {"tracker": tracker_json(result.conversation, verbosity)}


def _answer(result: TurnResult, conversation_id: str, verbosity: str) -> dict[str, Any]:
    return {
        "tracker": tracker_json(result.conversation, verbosity),
        "messages": collected(bot_messages(result.new_events, conversation_id)),
    }
