"""Rasa 3 custom connectors (Sanic classes importing ``rasa.core.channels``) named in
credentials.yml are served as Rasa serves them: their blueprint's routes under
``/webhooks/<name>/``, each user message through the server's gate, the bot's messages handed to
the message's output channel. Rasa is not installed here: ``connectors.rasa_compat`` provides the
modules they import; Sanic (rasa-sdk's) is real."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.project.endpoints_reader import read_credentials
from chatbot.server.app import create_app
from chatbot.server.settings import RateLimit, ServerSettings
from connectors.registry import channel_entries
from tests.chatbot.server.test_fuzz import json_values, mostly, payload_texts, texts
from tests.connectors.servers import serve
from tests.connectors.test_custom_channel import project

# Rasa's documented custom connector, with a path parameter, a form and a token beside.
MY_IO = """
import inspect

from sanic import Blueprint, response
from sanic.request import Request

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage


class MyIO(InputChannel):
    @classmethod
    def name(cls):
        return "myio"

    def __init__(self, greeting):
        self.greeting = greeting

    @classmethod
    def from_credentials(cls, credentials):
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(credentials["greeting"])

    def get_metadata(self, request):
        return {"agent": request.headers.get("X-Agent")}

    def blueprint(self, on_new_message):
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", inspect.getmodule(self).__name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request):
            return response.json({"status": "ok", "greeting": self.greeting})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request):
            collector = CollectingOutputChannel()
            try:  # as Rasa's template: log, and answer what was collected
                await on_new_message(
                    UserMessage(
                        request.json.get("text"),
                        collector,
                        request.json.get("sender"),
                        input_channel=self.name(),
                        metadata=self.get_metadata(request),
                    )
                )
            except Exception:
                pass
            return response.json(collector.messages)

        @webhook.route("/users/<user_id:int>/said", methods=["POST"])
        async def said(request, user_id):
            collector = CollectingOutputChannel()
            sender = f"user-{user_id}"
            await on_new_message(UserMessage(request.form.get("text"), collector, sender))
            texts = [m.get("text") for m in collector.messages]
            answer = {"user": user_id, "texts": texts, "token": request.token, "q": request.args.get("q")}
            return response.json(answer, status=201, headers={"X-Said": "yes"})

        return webhook
"""

# A connector that subclasses Rasa's REST channel to read another field.
MY_REST = """
from rasa.core.channels.rest import RestInput


class MyRest(RestInput):
    @classmethod
    def name(cls):
        return "myrest"

    def _extract_message(self, req):
        return req.json.get("text")
"""

# A connector whose output channel sends text only: Rasa's send_response writes the buttons as
# lines of text.
PUSHED = """
from sanic import Blueprint, response

from rasa.core.channels import InputChannel, OutputChannel, UserMessage

SENT = []


class ListOutput(OutputChannel):
    async def send_text_message(self, recipient_id, text, **kwargs):
        SENT.append([recipient_id, text])


class PushInput(InputChannel):
    @classmethod
    def name(cls):
        return "pushed"

    def get_output_channel(self):
        return ListOutput()

    def blueprint(self, on_new_message):
        webhook = Blueprint("push")

        @webhook.post("/webhook")
        async def receive(request):
            body = request.json
            await on_new_message(UserMessage(body["text"], ListOutput(), body["sender"], input_channel="pushed"))
            return response.text("ok")

        @webhook.post("/broken")
        async def broken(request):
            raise RuntimeError("the connector's own bug")

        @webhook.post("/unauthorized")
        async def unauthorized(request):
            from sanic.exceptions import Unauthorized

            raise Unauthorized("no token")

        return webhook
"""


def credentials(tmp_path: Path, files: dict[str, str], blocks: str) -> Any:
    return read_credentials(project(tmp_path, files, blocks))


def pushed_module(read: Any) -> Any:
    """This test's PUSHED module (each test's project has a package of its own)."""
    block = next(name for name in read.channels if name.endswith(".pushed.PushInput"))
    return sys.modules[block.rpartition(".")[0]]


async def test_rasas_documented_connector_answers_through_the_gate(
    agent: Agent, tmp_path: Path
) -> None:
    read = credentials(tmp_path, {"myio.py": MY_IO}, "PKG.myio.MyIO:\n  greeting: welcome\n")
    assert "myio: /webhooks/myio/ (a Rasa connector)" in channel_entries(read.channels.values())
    app = create_app(agent, ServerSettings(credentials=read))
    async with serve(app) as served, aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/webhooks/myio/") as health:
            assert health.status == 200
            assert await health.json() == {"status": "ok", "greeting": "welcome"}
        async with http.get(f"{served.url}/webhooks/myio") as loose:  # Sanic's loose slash
            assert loose.status == 200
        body = {"sender": "ann", "text": "/greet"}
        headers = {"X-Agent": "probe"}
        async with http.post(
            f"{served.url}/webhooks/myio/webhook", json=body, headers=headers
        ) as response:
            assert response.status == 200
            answer = await response.json()
        async with http.get(f"{served.url}/metrics") as metrics:
            counted = await metrics.text()
    assert answer and all(m["recipient_id"] == "ann" and m["text"] for m in answer)
    conversation = await agent.store.load("ann")
    user = [e for e in conversation.events if e["event"] == "user"]
    assert [(e["text"], e["input_channel"]) for e in user] == [("/greet", "myio")]
    assert user[0]["metadata"] == {"agent": "probe"}
    assert 'chatbot_messages_total{channel="myio",outcome="ok"} 1.0' in counted


async def test_path_parameters_forms_tokens_and_responses_are_sanics(
    agent: Agent, tmp_path: Path
) -> None:
    read = credentials(tmp_path, {"myio.py": MY_IO}, "PKG.myio.MyIO:\n  greeting: hi\n")
    app = create_app(agent, ServerSettings(credentials=read))
    async with serve(app) as served, aiohttp.ClientSession() as http:
        async with http.post(
            f"{served.url}/webhooks/myio/users/42/said?q=yes",
            data={"text": "/greet"},
            headers={"Authorization": "Bearer s3cret"},
        ) as response:
            assert response.status == 201
            assert response.headers["X-Said"] == "yes"
            assert response.content_type == "application/json"
            answer = await response.json()
        async with http.post(
            f"{served.url}/webhooks/myio/users/ann/said", data={"text": "/greet"}
        ) as not_an_int:
            assert not_an_int.status == 404
    assert answer["user"] == 42 and answer["token"] == "s3cret" and answer["q"] == "yes"
    assert answer["texts"] and all(answer["texts"])
    assert [e["text"] for e in (await agent.store.load("user-42")).events if e["event"] == "user"]


async def test_a_restinput_subclass_reads_its_own_field_and_streams(
    agent: Agent, tmp_path: Path
) -> None:
    read = credentials(tmp_path, {"myrest.py": MY_REST}, "rest:\nPKG.myrest.MyRest:\n")
    app = create_app(agent, ServerSettings(credentials=read))
    async with serve(app) as served, aiohttp.ClientSession() as http:
        body = {"sender": "bo", "text": "/greet", "metadata": {"page": "home"}}
        async with http.post(f"{served.url}/webhooks/myrest/webhook", json=body) as response:
            assert response.status == 200
            answer = await response.json()
        body = {"sender": "cy", "text": "/greet"}
        async with http.post(
            f"{served.url}/webhooks/myrest/webhook?stream=true", json=body
        ) as streamed:
            assert streamed.status == 200
            assert streamed.content_type == "text/event-stream"
            lines = [json.loads(line) for line in (await streamed.text()).splitlines()]
    assert answer and answer[0]["recipient_id"] == "bo" and answer[0]["text"]
    # One message a line, as the collected answer (the greeting's variation may differ).
    assert len(lines) == len(answer)
    assert all(m["recipient_id"] == "cy" and m["text"] for m in lines)
    stored = await agent.store.load("bo")
    user = next(e for e in stored.events if e["event"] == "user")
    assert user["input_channel"] == "myrest" and user["metadata"] == {"page": "home"}


async def test_an_output_channel_of_text_only_gets_buttons_as_lines(
    agent: Agent, tmp_path: Path
) -> None:
    read = credentials(tmp_path, {"pushed.py": PUSHED}, "PKG.pushed.PushInput:\n")
    app = create_app(agent, ServerSettings(credentials=read))
    module = pushed_module(read)
    async with serve(app) as served, aiohttp.ClientSession() as http:
        for text in ("/greet", "/request_restaurant"):
            body = {"sender": "di", "text": text}
            async with http.post(f"{served.url}/webhooks/pushed/webhook", json=body) as response:
                assert response.status == 200 and await response.text() == "ok"
    sent = [text for recipient, text in module.SENT if recipient == "di"]
    asked = sent.index("What cuisine would you like?")
    assert sent[asked + 1 : asked + 3] == [
        '1: Italian (/inform{"cuisine": "italian"})',
        '2: Chinese (/inform{"cuisine": "chinese"})',
    ]


async def test_messages_outside_a_request_go_to_the_connectors_output_channel(
    agent: Agent, tmp_path: Path
) -> None:
    """``trigger_intent?output_channel=latest`` (reminders go the same way): the bot's messages
    go to ``get_output_channel()`` of the connector the user wrote on, not into the answer; a
    connector without one (MyIO) keeps them in the answer."""
    read = credentials(
        tmp_path,
        {"pushed.py": PUSHED, "myio.py": MY_IO},
        "PKG.pushed.PushInput:\nPKG.myio.MyIO:\n  greeting: hi\n",
    )
    app = create_app(agent, ServerSettings(credentials=read, enable_api=True, rate_limit=None))
    module = pushed_module(read)
    async with serve(app) as served, aiohttp.ClientSession() as http:
        for sender, channel, field in (("gil", "pushed", "text"), ("hal", "myio", "text")):
            body = {"sender": sender, field: "/greet"}
            async with http.post(f"{served.url}/webhooks/{channel}/webhook", json=body) as said:
                assert said.status == 200
        answers = {}
        for sender in ("gil", "hal"):
            url = f"{served.url}/conversations/{sender}/trigger_intent?output_channel=latest"
            async with http.post(url, json={"name": "goodbye"}) as response:
                assert response.status == 200
                answers[sender] = await response.json()
    goodbyes = [text for recipient, text in module.SENT if recipient == "gil"][1:]
    assert goodbyes and "messages" not in answers["gil"]
    assert answers["hal"]["messages"] and answers["hal"]["messages"][0]["text"]


async def test_failures_are_the_answer_even_where_the_connector_catches_them(
    agent: Agent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rate limit, a body that is not JSON, a connector's bug, a Sanic exception: each is a
    JSON error with its status, never a 200 with nothing or a traceback."""
    read = credentials(
        tmp_path,
        {"myio.py": MY_IO, "pushed.py": PUSHED, "myrest.py": MY_REST},
        "PKG.myio.MyIO:\n  greeting: hi\nPKG.pushed.PushInput:\nPKG.myrest.MyRest:\n",
    )
    app = create_app(agent, ServerSettings(credentials=read, rate_limit=RateLimit(1, 60.0)))
    async with serve(app) as served, aiohttp.ClientSession() as http:
        url = f"{served.url}/webhooks/myio/webhook"
        statuses = []
        for _ in range(2):
            async with http.post(url, json={"sender": "eve", "text": "/greet"}) as response:
                statuses.append(response.status)
                limited = await response.json()
        async with http.post(
            url, data=b"{not json", headers={"Content-Type": "application/json"}
        ) as bad:
            assert bad.status == 400
            assert "not valid JSON" in (await bad.json())["message"]
        # A stream has sent its status when the turn fails: it ends with the error's body.
        body = {"sender": "eve", "text": "/greet"}
        stream = f"{served.url}/webhooks/myrest/webhook?stream=true"
        async with http.post(stream, json=body) as streamed:
            assert streamed.status == 200
            lines = [json.loads(line) for line in (await streamed.text()).splitlines()]
        assert [(m["status"], m["code"]) for m in lines] == [("failure", 429)]
        async with http.post(stream, json={"sender": "fay"}) as textless:
            lines = [json.loads(line) for line in (await textless.text()).splitlines()]
        assert [m["code"] for m in lines] == [400] and "no text" in lines[0]["message"]
        pushed = f"{served.url}/webhooks/pushed/webhook"
        async with http.post(pushed) as empty:  # the handler reads request.json["text"]
            assert empty.status == 400
            assert "the request body is empty" in (await empty.json())["message"]
        async with http.post(pushed, json=["hi"]) as listed:
            assert listed.status == 400
            assert "must be a JSON object, not an array" in (await listed.json())["message"]
        with caplog.at_level(logging.ERROR):
            async with http.post(f"{served.url}/webhooks/pushed/broken", json={}) as broken:
                assert broken.status == 500
                assert "Traceback" not in await broken.text()
        async with http.post(f"{served.url}/webhooks/pushed/unauthorized", json={}) as refused:
            assert refused.status == 401 and (await refused.json())["message"] == "no token"
    assert statuses == [200, 429]
    assert limited["status"] == "failure" and limited["code"] == 429
    assert "the connector's own bug" in caplog.text


@pytest.mark.parametrize(
    ("source", "block", "said"),
    [
        (MY_IO, "PKG.connector.MyIO:\n", "needs its settings in credentials.yml"),
        (
            MY_IO.replace('return "myio"', 'return "my/io"'),
            "PKG.connector.MyIO:\n  greeting: x\n",
            "without '/'",
        ),
        (
            "class MyIO:\n    pass\n",
            "PKG.connector.MyIO:\n",
            "neither a connectors.base.InputChannel",
        ),
        (
            "from rasa.core.channels.channel import InputChannel\n\n\n"
            "class MyIO(InputChannel):\n    pass\n",
            "PKG.connector.MyIO:\n",
            "MyIO: its blueprint() failed: NotImplementedError",
        ),
        (
            MY_IO.replace("<user_id:int>", "<user_id:ymd>"),
            "PKG.connector.MyIO:\n  greeting: x\n",
            "myio: route '/users/<user_id:ymd>/said': path parameters of type 'ymd'",
        ),
    ],
    ids=["from-credentials", "bad-name", "no-connector", "no-blueprint", "path-type"],
)
def test_a_connector_that_cannot_be_built_is_an_error_naming_the_file_and_line(
    agent: Agent, tmp_path: Path, source: str, block: str, said: str
) -> None:
    path = project(tmp_path, {"connector.py": source}, "rest:\n" + block)
    with pytest.raises(ConfigError) as error:
        create_app(agent, ServerSettings(credentials=read_credentials(path)))
    message = str(error.value)
    assert message.startswith(f"{path}:2: ") and said in message, message


async def test_a_connector_needing_more_of_rasa_is_skipped_and_the_rest_start(
    agent: Agent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = "from rasa.core.agent import Agent\n" + MY_REST
    path = project(tmp_path, {"needy.py": source}, "rest:\nPKG.needy.MyRest:\n")
    with caplog.at_level(logging.WARNING):
        app = create_app(agent, ServerSettings(credentials=read_credentials(path)))
    assert f"{path}:2: '" in caplog.text
    assert "it imports rasa.core.agent, which is not installed" in caplog.text
    async with (
        serve(app) as served,
        aiohttp.ClientSession() as http,
        http.get(f"{served.url}/webhooks/rest/") as response,
    ):
        assert response.status == 200


async def test_a_connector_importing_rasas_events_is_served(
    agent: Agent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The names custom policies import (``rasa.shared.core.events``...) are a connector's too."""
    source = "from rasa.shared.core.events import SlotSet\n" + MY_REST
    path = project(tmp_path, {"evented.py": source}, "rest:\nPKG.evented.MyRest:\n")
    with caplog.at_level(logging.WARNING):
        app = create_app(agent, ServerSettings(credentials=read_credentials(path)))
    assert "skipped" not in caplog.text
    body = {"sender": "ev", "text": "/greet"}  # MyRest reads its own field
    async with (
        serve(app) as served,
        aiohttp.ClientSession() as http,
        http.post(f"{served.url}/webhooks/myrest/webhook", json=body) as response,
    ):
        assert response.status == 200
        assert (await response.json())[0]["recipient_id"] == "ev"


rest_bodies = st.fixed_dictionaries(
    {"sender": mostly(texts(40)), "text": mostly(payload_texts | texts(30))},
    optional={"metadata": json_values, "input_channel": json_values, "message": json_values},
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=rest_bodies | json_values, stream=st.booleans())
@example(body=["/greet"], stream=False)
@example(body={"sender": "", "text": "/greet"}, stream=False)  # was a 500
@example(body={"sender": "a\x00b", "text": "/greet"}, stream=False)
@example(body={"sender": {"id": 1}, "text": "/greet"}, stream=True)
async def test_random_bodies_at_rasa_connectors_are_never_a_500(
    agent: Agent, tmp_path_factory: pytest.TempPathFactory, body: Any, stream: bool
) -> None:
    """Rasa's template connector (catching everything) and a ``RestInput`` subclass (catching
    nothing): any JSON is answered without a 500."""
    folder = tmp_path_factory.mktemp("fuzz")
    read = credentials(
        folder,
        {"myio.py": MY_IO, "myrest.py": MY_REST},
        "PKG.myio.MyIO:\n  greeting: hi\nPKG.myrest.MyRest:\n",
    )
    app = create_app(agent, ServerSettings(credentials=read, rate_limit=None))
    query = "?stream=true" if stream else ""
    async with serve(app) as served, aiohttp.ClientSession() as http:
        for channel in ("myio", "myrest"):
            url = f"{served.url}/webhooks/{channel}/webhook{query}"
            async with http.post(url, json=body) as response:
                assert response.status < 500, await response.text()
