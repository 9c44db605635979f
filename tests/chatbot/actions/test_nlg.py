"""endpoints.yml ``nlg:``: an NLG server (the bot owner's own, here on loopback) words every
response, whatever the domain has for it; when it fails, the domain's response is sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from chatbot.actions.base import ActionContext
from chatbot.actions.builtin import ActionDefaultAskAffirmation, ActionDefaultFallback
from chatbot.actions.nlg import NLGClient, create_nlg_client
from chatbot.actions.registry import ActionRegistry
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.events import Event, ParseData
from chatbot.errors import ConfigError
from chatbot.project.domain import Domain, Origin
from chatbot.project.endpoints import EndpointBlock
from tests.connectors.servers import serve
from tests.helpers import dialogue_model, domain_of


class NLGServer:
    """Answers Rasa's NLG request with its own wording; records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.status = 200
        self.answer: str | None = None  # this body instead of the message, where set
        self.app = web.Application()
        self.app.router.add_post("/nlg", self.nlg)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for body, _ in self.requests]

    async def nlg(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((body, dict(request.query)))
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        if self.answer is not None:
            return web.Response(text=self.answer, content_type="application/json")
        name = body["response"]
        return web.json_response(
            {"text": f"[{name}] for {body['tracker']['sender_id']}", "buttons": []}
        )


@pytest.fixture
async def nlg_server() -> AsyncIterator[tuple[NLGServer, str]]:
    server = NLGServer()
    async with serve(server.app) as served:
        yield server, f"{served.url}/nlg"


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return dialogue_model("restaurant")


async def test_every_response_is_worded_by_the_nlg_server(
    model: TrainedModel, nlg_server: tuple[NLGServer, str]
) -> None:
    server, url = nlg_server
    client = create_nlg_client(EndpointBlock("nlg", {"url": url, "token": "t0k"}))
    agent = Agent(model, nlg=client)
    try:
        answers = await agent.handle_text("/greet", "ann")
        asked = await agent.handle_text("/bot_challenge", "ann")
    finally:
        await agent.close()
    assert [m["text"] for m in answers] == ["[utter_greet] for ann"]
    assert [m["text"] for m in asked][-1].startswith("[utter_iamabot] for ann")
    body, query = server.requests[0]
    assert body["response"] == body["template"] == "utter_greet"
    assert body["channel"] == {"name": "collector"} and body["arguments"] == {}
    assert body["id"] is None  # the domain's variation has none
    assert body["tracker"]["latest_message"]["intent"]["name"] == "greet"
    assert query == {"token": "t0k"}
    stored = [e for e in (await agent.store.load("ann")).events if e["event"] == "bot"]
    assert stored[0]["text"] == "[utter_greet] for ann"
    assert stored[0]["metadata"]["utter_action"] == "utter_greet"


async def test_a_failing_nlg_server_gives_the_domains_response(
    model: TrainedModel, nlg_server: tuple[NLGServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = nlg_server
    server.status = 500
    agent = Agent(model, nlg=NLGClient(url))
    try:
        answers = await agent.handle_text("/bot_challenge", "bo")
    finally:
        await agent.close()
    assert [m["text"] for m in answers] == ["I am a bot: a restaurant booking assistant."]
    assert "answered 500 for utter_iamabot" in caplog.text


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        ('{"text": 5}', "answered a message that cannot be sent (its 'text' is not a string"),
        ('{"text": "hi", "buttons": "yes"}', "its 'buttons' is not a list"),
        ('{"text": "hi", "metadata": "m"}', "its 'metadata' is not an object"),
        ('{"text": NaN}', "NaN is not a JSON value"),
        ('{"text": ' + "[" * 5000 + "]" * 5000 + "}", "the JSON nests too deeply"),
        ('["hi"]', "answered no message"),
    ],
)
async def test_an_nlg_answer_that_is_no_message_gives_the_domains_response(
    model: TrainedModel,
    nlg_server: tuple[NLGServer, str],
    caplog: pytest.LogCaptureFixture,
    answer: str,
    cause: str,
) -> None:
    server, url = nlg_server
    server.answer = answer
    agent = Agent(model, nlg=NLGClient(url))
    try:
        answers = await agent.handle_text("/bot_challenge", "di")
    finally:
        await agent.close()
    assert answers == [
        {"recipient_id": "di", "text": "I am a bot: a restaurant booking assistant."}
    ]
    assert cause in caplog.text


async def test_an_unreachable_nlg_server_gives_the_domains_response(model: TrainedModel) -> None:
    client = NLGClient("http://127.0.0.1:9/nlg", timeout=2.0)
    agent = Agent(model, nlg=client)
    try:
        answers = await agent.handle_text("/bot_challenge", "cy")
    finally:
        await agent.close()
    assert [m["text"] for m in answers] == ["I am a bot: a restaurant booking assistant."]
    assert client.failures == 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "nlg needs 'url'"),
        ({"url": "localhost:5056/nlg"}, "nlg needs 'url'"),
        (
            {"url": "http://x/nlg", "type": "my_nlg.Generator"},
            "nlg: type 'my_nlg.Generator' would be a custom NLG class, which is not supported",
        ),
        ({"url": "http://x/nlg", "timeout": 0}, "'timeout' must be a positive number"),
        ({"url": "http://x/nlg", "headers": ["a"]}, "must be mappings"),
    ],
)
def test_bad_nlg_blocks_name_the_file_and_line(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_nlg_client(EndpointBlock("nlg", params, Origin("endpoints.yml", 4)))
    assert str(error.value).startswith("endpoints.yml:4: ") and needle in str(error.value)


# --- what is asked, and what is sent (actions run against a small domain) -----------------------

DOMAIN = """
intents: [greet]
slots:
  city:
    type: text
    mappings: [{type: custom}]
responses:
  utter_kw:
    - text: "Hello {name}, from {city}"
      buttons: [{title: dom, payload: /dom}]
  utter_paris_only:
    - condition: [{type: slot, name: city, value: Paris}]
      text: Bonjour
  utter_slack_only:
    - channel: slack
      text: Slack
  utter_silent: []
  utter_ids:
    - condition: [{type: slot, name: city, value: Berlin}]
      text: conditional
      id: cond
    - text: A
      id: first
  utter_two_ids:
    - text: A
      id: first
    - text: B
      id: second
  utter_default:
    - text: Sorry?
  utter_faq/ask_name:
    - text: I am a bot.
actions: [utter_remote, action_custom]
"""


@pytest.fixture
async def nlg(nlg_server: tuple[NLGServer, str]) -> AsyncIterator[tuple[NLGServer, NLGClient]]:
    server, url = nlg_server
    client = NLGClient(url, timeout=5.0)
    yield server, client
    await client.close()


def _context(domain: Domain, client: NLGClient | None) -> ActionContext:
    conversation = Conversation("ann", domain)
    conversation.append({"event": "slot", "timestamp": 1.0, "name": "city", "value": "Berlin"})
    return ActionContext(conversation, domain, "collector", nlg=client)


async def _run(action: str, client: NLGClient | None, executor: Any = None) -> list[Event]:
    domain = domain_of(DOMAIN)
    return await ActionRegistry(domain, executor).get(action).run(_context(domain, client))


@pytest.mark.parametrize(
    "response", ["utter_remote", "utter_silent", "utter_paris_only", "utter_slack_only"]
)
async def test_the_nlg_server_words_what_the_domain_cannot(
    nlg: tuple[NLGServer, NLGClient], response: str
) -> None:
    """As Rasa's CallbackNaturalLanguageGenerator, which never looks at the domain: a response
    only listed in ``actions``, one without variations, one with none that applies."""
    server, client = nlg
    events = await _run(response, client)
    assert [e["text"] for e in events] == [f"[{response}] for ann"]
    assert events[0]["metadata"] == {"utter_action": response}
    [body] = server.bodies
    assert body["response"] == response and body["arguments"] == {} and body["id"] is None


async def test_without_an_nlg_server_a_response_only_listed_in_actions_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It is a response, not a custom action (no action endpoint is asked), as in Rasa."""
    with caplog.at_level(logging.WARNING):
        assert await _run("utter_remote", None) == []
    [warning] = [r.getMessage() for r in caplog.records]
    assert "response utter_remote is not in the domain and no NLG server" in warning


async def test_the_nlg_server_words_the_default_actions_responses_but_not_their_own_words(
    nlg: tuple[NLGServer, NLGClient],
) -> None:
    """``action_default_fallback`` sends ``utter_default``, which the server words; the
    two-stage fallback's "Did you mean ...?" is no response, and Rasa does not ask for it."""
    server, client = nlg
    domain = domain_of(DOMAIN)
    said = await ActionDefaultFallback().run(_context(domain, client))
    assert said[0]["text"] == "[utter_default] for ann"
    asked = await ActionDefaultAskAffirmation().run(_context(domain, client))
    assert asked[0]["text"].startswith("Did you mean")
    assert [b["response"] for b in server.bodies] == ["utter_default"]


async def test_the_nlg_server_words_a_retrieval_intents_response(
    nlg: tuple[NLGServer, NLGClient],
) -> None:
    server, client = nlg
    domain = domain_of(DOMAIN)
    ctx = _context(domain, client)
    parse_data: ParseData = {"intent": {"name": "faq/ask_name", "confidence": 1.0}}
    ctx.conversation.append(ev.user("/faq/ask_name", parse_data))
    events = await ActionRegistry(domain).get("utter_faq").run(ctx)
    assert [e["text"] for e in events] == ["[utter_faq/ask_name] for ann"]
    assert [b["response"] for b in server.bodies] == ["utter_faq/ask_name"]


class ActionServer:
    """A rasa-sdk action server whose action sends the given ``utter_message`` entries."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = responses
        self.app = web.Application()
        self.app.router.add_post("/webhook", self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        return web.json_response({"events": [], "responses": self.responses})


def _sdk_message(**keys: Any) -> dict[str, Any]:
    """rasa-sdk's ``dispatcher.utter_message(**keys)`` entry."""
    message: dict[str, Any] = {
        "text": None,
        "buttons": [],
        "elements": [],
        "custom": {},
        "template": keys.get("response"),
        "response": None,
        "image": None,
        "attachment": None,
    }
    return {**message, **keys}


async def _run_custom(responses: list[dict[str, Any]], client: NLGClient | None) -> list[Event]:
    async with serve(ActionServer(responses).app) as served:
        executor = HTTPActionExecutor(f"{served.url}/webhook")
        try:
            return await _run("action_custom", client, executor)
        finally:
            await executor.close()


async def test_a_custom_actions_keys_are_the_nlg_arguments_and_added_to_its_answer(
    nlg: tuple[NLGServer, NLGClient],
) -> None:
    """As Rasa's RemoteAction: ``arguments`` are the entry's other keys; the server's answer
    gets the entry's buttons after its own and its set keys (text, image) in place of its own;
    keys of no message are metadata."""
    server, client = nlg
    server.answer = '{"text": "from the server", "buttons": [{"title": "nlg"}], "foo": "bar"}'
    button = {"title": "sdk", "payload": "/sdk"}
    events = await _run_custom(
        [
            _sdk_message(response="utter_kw", name="Joe"),
            _sdk_message(response="utter_kw", buttons=[button]),
            _sdk_message(response="utter_kw", text="OVERRIDE", image="https://x/i.png"),
            _sdk_message(response="utter_remote"),
        ],
        client,
    )
    assert server.bodies[0]["arguments"] == {
        "text": None,
        "buttons": [],
        "elements": [],
        "custom": {},
        "image": None,
        "attachment": None,
        "name": "Joe",
    }
    assert [b["response"] for b in server.bodies] == ["utter_kw"] * 3 + ["utter_remote"]
    joe, buttons, override, remote = events
    assert joe["text"] == "from the server"
    assert joe["metadata"] == {"foo": "bar", "name": "Joe", "utter_action": "utter_kw"}
    assert buttons["data"]["buttons"] == [{"title": "nlg"}, button]
    assert override["text"] == "OVERRIDE" and override["data"]["image"] == "https://x/i.png"
    assert remote["text"] == "from the server"


async def test_without_an_nlg_server_a_custom_action_gets_the_domains_response() -> None:
    button = {"title": "sdk", "payload": "/sdk"}
    events = await _run_custom(
        [_sdk_message(response="utter_kw", name="Joe", buttons=[button])], None
    )
    assert [e["text"] for e in events] == ["Hello Joe, from Berlin"]
    assert events[0]["data"]["buttons"] == [{"title": "dom", "payload": "/dom"}, button]
    assert events[0]["metadata"] == {"name": "Joe", "utter_action": "utter_kw"}


@pytest.mark.parametrize("answer", ["{}", "null", ""])
async def test_an_nlg_answer_of_nothing_sends_nothing(
    nlg: tuple[NLGServer, NLGClient], answer: str
) -> None:
    """Rasa's validate_response: "the endpoint did not want to respond with anything"; the
    domain's response is not sent in its place, nor a custom action's keys."""
    server, client = nlg
    server.answer = answer
    assert await _run("utter_kw", client) == []
    assert await _run_custom([_sdk_message(response="utter_kw", text="T")], client) == []


async def test_an_nlg_answer_with_an_attachment_only_or_other_keys_is_sent(
    nlg: tuple[NLGServer, NLGClient],
) -> None:
    server, client = nlg
    server.answer = '{"attachment": {"type": "file", "url": "u"}}'
    [attached] = await _run("utter_kw", client)
    assert attached["text"] is None
    assert attached["data"] == {"attachment": {"type": "file", "url": "u"}}
    server.answer = '{"text": "hi", "foo": "bar", "metadata": {"m": 1}}'
    [extra] = await _run("utter_kw", client)
    assert extra["metadata"] == {"foo": "bar", "m": 1, "utter_action": "utter_kw"}


@pytest.mark.parametrize(
    "answer",
    [
        '{"text": "hi", "image": 5}',
        '{"text": "hi", "attachment": "u"}',
        '{"text": "hi", "custom": [1]}',
        '"hi"',
    ],
)
async def test_a_failing_nlg_server_sends_nothing_where_the_domain_has_nothing(
    nlg: tuple[NLGServer, NLGClient], caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    """Answers Rasa's response schema refuses; where the domain has no response to send in
    their place, nothing is sent (one line logged)."""
    server, client = nlg
    server.answer = answer
    assert [e["text"] for e in await _run("utter_default", client)] == ["Sorry?"]
    caplog.clear()
    assert await _run("utter_remote", client) == []
    [logged] = [r.getMessage() for r in caplog.records]
    assert "for utter_remote; nothing is sent" in logged
    assert client.failures == 2


@pytest.mark.parametrize(
    ("response", "expected"),
    [("utter_ids", "cond"), ("utter_two_ids", "first"), ("utter_kw", None), ("utter_remote", None)],
)
async def test_the_nlg_request_names_the_domain_variation_that_applies(
    nlg: tuple[NLGServer, NLGClient], response: str, expected: str | None
) -> None:
    """Rasa 3.6.4+'s ``id``: the first variation that applies, every time; None where there
    is no such variation or it has no id."""
    server, client = nlg
    for _ in range(8):
        await _run(response, client)
    assert {b["id"] for b in server.bodies} == {expected}
    assert {b["template"] for b in server.bodies} == {response}


def test_nlg_type_response_uses_the_domains_responses() -> None:
    block = EndpointBlock("nlg", {"type": "response"}, Origin("endpoints.yml", 1))
    assert create_nlg_client(block) is None
