"""Custom actions over HTTP against fake action servers: rejection (400), failures (5xx, timeout,
refused, malformed answers), what the user gets, what is stored, and the circuit breaker."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Set
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chatbot.actions import remote
from chatbot.actions.base import ActionContext
from chatbot.actions.registry import ActionRegistry
from chatbot.actions.remote import CircuitBreaker, HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.messages import UserMessage
from chatbot.dialogue.ensemble import PolicyEnsemble
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.errors import ActionError, ActionRejected
from chatbot.nlu.intent_payload import parse_intent_payload
from chatbot.processor import ACTION_FAILED_TEXT, MessageProcessor
from chatbot.store import InMemoryLockStore, InMemoryStore
from tests.helpers import dialogue_model, domain_of

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeActionServer:
    """Answers each action call with ``reply``; records the calls."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.calls: list[dict[str, Any]] = []
        self.requests: list[web.Request] = []
        self.app = web.Application()
        self.app.router.add_post("/webhook", self.webhook)

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(await request.json())
        self.requests.append(request)
        return await self.reply(request)


@pytest.fixture
async def action_server() -> AsyncIterator[
    Callable[[Reply], Awaitable[tuple[FakeActionServer, str]]]
]:
    servers: list[TestServer] = []

    async def start(reply: Reply) -> tuple[FakeActionServer, str]:
        fake = FakeActionServer(reply)
        server = TestServer(fake.app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return fake, str(server.make_url("/webhook"))

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def executor() -> AsyncIterator[Callable[..., HTTPActionExecutor]]:
    """``executor(url, **settings)``: an HTTP executor, closed after the test."""
    made: list[HTTPActionExecutor] = []

    def make(url: str, **kwargs: Any) -> HTTPActionExecutor:
        made.append(HTTPActionExecutor(url, **kwargs))
        return made[-1]

    yield make
    for one in made:
        await one.close()


@pytest.fixture(scope="module")
def restaurant_model() -> TrainedModel:
    return dialogue_model("restaurant")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answer(status: int = 200, body: Any = None, text: str | None = None) -> Reply:
    async def reply(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text)
        return web.json_response(body, status=status)

    return reply


async def booking(agent: Agent, sender: str = "alice") -> list[dict[str, Any]]:
    """Ask for a table with a cuisine: the form validates it with ``validate_restaurant_form``."""
    await agent.handle_text("/greet", sender)
    return await agent.handle_text('/request_restaurant{"cuisine": "thai"}', sender)


async def stored_events(agent: Agent, sender: str = "alice") -> list[dict[str, Any]]:
    return (await agent.store.load(sender, all_sessions=True)).events


async def test_a_valid_answer_is_applied(
    executor: Callable[..., HTTPActionExecutor], action_server: Any, restaurant_model: TrainedModel
) -> None:
    fake, url = await action_server(
        answer(
            body={
                "events": [{"event": "slot", "name": "cuisine", "value": "thai"}],
                "responses": [{"text": "Thai it is."}],
            }
        )
    )
    agent = Agent(restaurant_model, action_executor=executor(url))
    replies = await booking(agent)
    assert replies[0]["text"] == "Thai it is."
    call = fake.calls[0]
    assert call["next_action"] == "validate_restaurant_form"
    assert call["sender_id"] == "alice"
    assert call["tracker"]["slots"]["cuisine"] == "thai"
    assert "restaurant_form" in call["domain"]["forms"]
    assert call["version"]


async def test_rejection_predicts_again_without_the_action(
    executor: Callable[..., HTTPActionExecutor], action_server: Any, restaurant_model: TrainedModel
) -> None:
    _, url = await action_server(answer(400, {"error": "no thai today", "action_name": "x"}))
    agent = Agent(restaurant_model, action_executor=executor(url))
    replies = await booking(agent)
    assert ACTION_FAILED_TEXT not in [r.get("text") for r in replies]
    events = await stored_events(agent)
    rejected = [e for e in events if e["event"] == "action_execution_rejected"]
    assert [e["name"] for e in rejected] == ["restaurant_form"]
    assert events[-1]["event"] == "action" and events[-1]["name"] == "action_listen"


@pytest.mark.parametrize(
    "reply",
    [
        answer(500, {"error": "boom"}),
        answer(503, text="busy"),
        answer(200, text="<html>not json</html>"),
        answer(200, ["a", "list"]),
        answer(200, {"events": [{"event": "no_such_event"}]}),
        answer(404, {"error": "unknown action"}),
    ],
    ids=["500", "503", "not-json", "not-an-object", "bad-events", "404"],
)
async def test_failures_give_the_failure_response_and_store_no_half_action(
    executor: Callable[..., HTTPActionExecutor],
    action_server: Any,
    restaurant_model: TrainedModel,
    reply: Reply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = await action_server(reply)
    agent = Agent(restaurant_model, action_executor=executor(url))
    replies = await booking(agent)
    assert replies == [{"recipient_id": "alice", "text": ACTION_FAILED_TEXT}]
    events = await stored_events(agent)
    after_user = events[[e["event"] for e in events].index("user", 4) :]
    assert not any(e["event"] == "active_loop" for e in after_user)  # the form did not start
    assert not any(e.get("name") == "restaurant_form" for e in after_user)
    assert after_user[-1]["name"] == "action_listen"
    assert "validate_restaurant_form" in caplog.text  # the cause is logged


async def test_timeout(
    executor: Callable[..., HTTPActionExecutor], action_server: Any, restaurant_model: TrainedModel
) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.json_response({})

    _, url = await action_server(hang)
    http = executor(url, timeout=0.2)
    agent = Agent(restaurant_model, action_executor=http)
    replies = await booking(agent)
    assert replies == [{"recipient_id": "alice", "text": ACTION_FAILED_TEXT}]
    never.set()


async def test_refused_connection(
    executor: Callable[..., HTTPActionExecutor], restaurant_model: TrainedModel
) -> None:
    http = executor(f"http://127.0.0.1:{closed_port()}/webhook")
    agent = Agent(restaurant_model, action_executor=http)
    assert await booking(agent) == [{"recipient_id": "alice", "text": ACTION_FAILED_TEXT}]
    assert await http.ping() is False


class GreetWithAction(Policy):
    """Answers every user message with ``action_hello`` (unless it was rejected), then listens."""

    name = "GreetWithAction"
    priority = 1

    def predict(self, conversation: Conversation, excluded: Set[str] = frozenset()) -> Prediction:
        after_user = conversation.latest_action_name == "action_listen"
        if after_user and "action_hello" not in excluded:
            return Prediction("action_hello", 1.0, self.name, 1)
        return Prediction("action_listen", 1.0, self.name, 1)

    def export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {}


def processor_with(custom: HTTPActionExecutor) -> MessageProcessor:
    domain = domain_of(
        """
intents: [greet]
actions: [action_hello]
responses:
  utter_action_failed:
  - text: "The kitchen is closed, sorry."
"""
    )

    async def parse(text: str) -> dict[str, Any]:
        return parse_intent_payload(text) or {"intent": {"name": None, "confidence": 0.0}}

    return MessageProcessor(
        domain,
        parse,
        PolicyEnsemble([GreetWithAction()]),
        ActionRegistry(domain, custom),
        InMemoryStore(),
        InMemoryLockStore(),
    )


async def test_the_domains_failure_response_is_used(
    executor: Callable[..., HTTPActionExecutor], action_server: Any
) -> None:
    _, url = await action_server(answer(500, {}))
    processor = processor_with(executor(url))
    replies = await processor.handle_message(UserMessage("/greet", "u"))
    assert replies == [{"recipient_id": "u", "text": "The kitchen is closed, sorry."}]
    events = (await processor.store.load("u")).events
    assert "action_hello" not in [e.get("name") for e in events]
    assert events[-1]["name"] == "action_listen"


@pytest.mark.parametrize(
    "body",
    [
        {"events": [], "responses": 5},
        {"events": [], "responses": [{"text": 5}]},
        {"events": [], "responses": [{"text": "hi", "metadata": "m"}]},
        {"events": [], "responses": [{"text": "hi", "buttons": "yes/no"}]},
        {"events": [], "responses": [{"text": "hi", "elements": 3}]},
        {"events": 7},
        {"events": [{"event": "slot"}]},
        # Events the next turns would read and fail on, had they been stored.
        {"events": [{"event": "bot", "text": "hi", "data": "x"}]},
        {"events": [{"event": "user", "parse_data": {"intent_ranking": [{"confidence": "hi"}]}}]},
        {"events": [{"event": "entities", "entities": ["thai"]}]},
        {"events": [{"event": "slot", "name": "x", "value": float("nan")}]},  # NaN: not JSON
    ],
)
async def test_a_malformed_answer_is_the_actions_failure(
    executor: Callable[..., HTTPActionExecutor], action_server: Any, body: dict[str, Any]
) -> None:
    # A 200 that is not an answer is handled as a failed action: the failure response, and
    # nothing of the action stored.
    _, url = await action_server(answer(200, body))
    processor = processor_with(executor(url))
    replies = await processor.handle_message(UserMessage("/greet", "u"))
    assert replies == [{"recipient_id": "u", "text": "The kitchen is closed, sorry."}]
    events = (await processor.store.load("u")).events
    assert "action_hello" not in [e.get("name") for e in events]


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_too_large_is_the_actions_failure(
    executor: Callable[..., HTTPActionExecutor],
    action_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    chunked: bool,
) -> None:
    monkeypatch.setattr(remote, "MAX_ANSWER_BYTES", 1000)
    events = [{"event": "slot", "name": "x", "value": "v" * 100}] * 20  # about 2,000 bytes

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: sent in chunks
        await response.prepare(request)
        await response.write(json.dumps({"events": events}).encode())
        await response.write_eof()
        return response

    _, url = await action_server(streamed if chunked else answer(200, {"events": events}))
    processor = processor_with(executor(url))
    replies = await processor.handle_message(UserMessage("/greet", "u"))
    assert replies == [{"recipient_id": "u", "text": "The kitchen is closed, sorry."}]
    small = [{"event": "slot", "name": "x", "value": "v"}]
    _, url = await action_server(answer(200, {"events": small}))
    processor = processor_with(executor(url))
    assert await processor.handle_message(UserMessage("/greet", "u")) == []  # applied


async def test_a_rejected_action_is_logged_and_the_bot_listens(
    executor: Callable[..., HTTPActionExecutor], action_server: Any
) -> None:
    _, url = await action_server(answer(400, {"error": "not now"}))
    processor = processor_with(executor(url))
    assert await processor.handle_message(UserMessage("/greet", "u")) == []
    kinds = [(e["event"], e.get("name")) for e in (await processor.store.load("u")).events]
    assert kinds[-2:] == [
        ("action_execution_rejected", "action_hello"),
        ("action", "action_listen"),
    ]


async def test_rasa_endpoint_settings_are_sent(
    executor: Callable[..., HTTPActionExecutor], action_server: Any
) -> None:
    fake, url = await action_server(answer(body=None))
    http = executor(
        url,
        headers={"X-Api-Key": "k"},
        params={"token": "t"},
        basic_auth=("user", "pass"),
    )
    ctx = _context()
    assert await http.run("action_x", ctx) == {"events": [], "responses": []}
    request = fake.requests[0]
    assert request.query["token"] == "t"
    assert request.headers["X-Api-Key"] == "k"
    assert request.headers["Authorization"].startswith("Basic ")


def _context() -> ActionContext:
    domain = domain_of("intents: [greet]\nactions: [action_x]\n")
    return ActionContext(Conversation("u", domain), domain)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_circuit_breaker_opens_then_tries_again(
    executor: Callable[..., HTTPActionExecutor], action_server: Any
) -> None:
    status = {"code": 500}

    async def flaky(request: web.Request) -> web.StreamResponse:
        return web.json_response({"events": []}, status=status["code"])

    fake, url = await action_server(flaky)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, open_seconds=30, clock=clock)
    http = executor(url, breaker=breaker)
    ctx = _context()

    for _ in range(2):
        with pytest.raises(ActionError, match="answered 500"):
            await http.run("action_x", ctx)
    assert breaker.is_open() and len(fake.calls) == 2
    with pytest.raises(ActionError, match="failed 2 times in a row"):
        await http.run("action_x", ctx)
    assert len(fake.calls) == 2  # not called while open

    clock.now += 30  # half-open: one trial call, which fails: open again
    with pytest.raises(ActionError, match="answered 500"):
        await http.run("action_x", ctx)
    assert len(fake.calls) == 3 and breaker.is_open()
    with pytest.raises(ActionError, match="times in a row"):
        await http.run("action_x", ctx)

    clock.now += 30
    status["code"] = 200  # the server is back: the trial closes the circuit
    assert await http.run("action_x", ctx) == {"events": []}
    assert not breaker.is_open() and breaker.consecutive_failures == 0
    assert await http.run("action_x", ctx) == {"events": []}
    assert breaker.total_failures == 3


async def test_rejections_and_unknown_actions_do_not_open_the_circuit(
    executor: Callable[..., HTTPActionExecutor],
    action_server: Any,
) -> None:
    codes = iter([400, 404, 400, 404])

    async def reply(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "no"}, status=next(codes))

    _, url = await action_server(reply)
    breaker = CircuitBreaker(failure_threshold=1)
    http = executor(url, breaker=breaker)
    for expected in (ActionRejected, ActionError, ActionRejected, ActionError):
        with pytest.raises(expected):
            await http.run("action_x", _context())
    assert not breaker.is_open()


def test_breaker_with_threshold_zero_never_opens() -> None:
    breaker = CircuitBreaker(failure_threshold=0)
    for _ in range(100):
        breaker.failed()
    assert not breaker.is_open() and breaker.wait_time() == 0.0


def test_half_open_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=10, clock=clock)
    breaker.failed()
    assert breaker.wait_time() == pytest.approx(10)
    clock.now = 10
    assert breaker.wait_time() == 0.0  # the trial
    assert breaker.wait_time() > 0  # others wait for it
    breaker.succeeded()
    assert breaker.wait_time() == 0.0


def test_the_rasa_version_an_action_call_names_is_one_rasa_sdk_takes_without_a_warning() -> None:
    """rasa-sdk warns at every call whose Rasa version differs from its own in A.B (it did at
    every call with rasa-sdk 3.7 and later); pytest makes that warning an error here."""
    from rasa_sdk.utils import check_version_compatibility

    from chatbot.actions.action_call import RASA_PROTOCOL_VERSION

    check_version_compatibility(RASA_PROTOCOL_VERSION)
