"""endpoints.yml ``nlg:``: an NLG server (the bot owner's own, here on loopback) words every
response; when it fails, the domain's response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from chatbot.actions.base import bot_event
from chatbot.actions.nlg import NLGClient, _response_of, create_nlg_client
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from tests.connectors.servers import serve
from tests.helpers import dialogue_model


class NLGServer:
    """Answers Rasa's NLG request with its own wording; records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.status = 200
        self.answer: str | None = None  # this body instead of the message, where set
        self.app = web.Application()
        self.app.router.add_post("/nlg", self.nlg)

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
        ({"url": "http://x/nlg", "type": "template"}, "type 'template' is not supported"),
        ({"url": "http://x/nlg", "timeout": 0}, "'timeout' must be a positive number"),
        ({"url": "http://x/nlg", "headers": ["a"]}, "must be mappings"),
    ],
)
def test_bad_nlg_blocks_name_the_file_and_line(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_nlg_client(EndpointBlock("nlg", params, Origin("endpoints.yml", 4)))
    assert str(error.value).startswith("endpoints.yml:4: ") and needle in str(error.value)


def test_only_responses_go_to_the_nlg_server() -> None:
    """A default action's own message (the two-stage fallback's "Did you mean ...?") is not a
    response: Rasa does not ask the NLG server for it either."""
    asked = bot_event({"text": "Did you mean 'greet'?"}, "action_default_ask_affirmation")
    said = bot_event({"text": "Hello!"}, "utter_greet")
    assert _response_of(asked) is None and _response_of(said) == "utter_greet"
    assert _response_of({"event": "user", "text": "hi"}) is None
