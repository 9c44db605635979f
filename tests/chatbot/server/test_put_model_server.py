"""``PUT /model`` with Rasa's ``{"model_server": {...}}``: the model that server sends is served at
once and the server is followed from then on, in place of endpoints.yml's ``models:``; a server
that brings no model changes nothing (a 502 saying why), a body that names no usable server is a
400. A real model server on 127.0.0.1 (tests/chatbot/server/model_servers.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chatbot.errors import ConfigError
from chatbot.server.app import resolve_settings
from chatbot.server.settings import ServerSettings
from tests.chatbot.server.model_servers import TOKEN, WAIT, Bot, ModelServer, block
from tests.helpers import free_port


def server_block(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "token": TOKEN, "wait_time_between_pulls": 0.2, **extra}


async def put(bot: Bot, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    response = await bot.client.put("/model", json=body)
    if response.status == 204:
        return 204, None
    answer: dict[str, Any] = await response.json()
    return response.status, answer


async def greets(bot: Bot, text: str) -> None:
    """Until the bot greets with ``text`` (a followed model server's next pull)."""
    deadline = time.monotonic() + WAIT
    while await bot.greeting() != text:
        assert time.monotonic() < deadline, f"the bot never said {text!r}"
        await asyncio.sleep(0.05)


async def test_the_servers_model_is_served_at_once_and_followed(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    server = await model_server()
    server.serve("v2", models["v2"])
    bot = await start_bot(None, local=models["v1"])  # no models: in endpoints.yml
    assert await bot.greeting() == "Hello from v1!"

    status, answer = await put(bot, {"model_server": server_block(server.url)})
    assert status == 204, answer
    assert await bot.greeting() == "Hello from v2!"  # at once, not at a later pull
    assert server.tokens[0] == TOKEN
    info = await (await bot.client.get("/status")).json()
    assert info["model_file"] == server.url.split("?")[0]  # the URL, without its query

    server.serve("v1-again", models["v1"])  # the server's next model is followed
    await greets(bot, "Hello from v1!")
    assert server.if_none_match[0] is None
    assert '"v2"' in server.if_none_match  # later pulls name the ETag of the PUT's model


async def test_it_takes_the_place_of_the_model_server_of_endpoints(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    first, second = await model_server(), await model_server()
    first.serve("v1", models["v1"])
    second.serve("v2", models["v2"])
    bot = await start_bot(block(first.url))
    assert await bot.greeting() == "Hello from v1!"

    status, answer = await put(bot, {"model_server": server_block(second.url)})
    assert status == 204, answer
    assert await bot.greeting() == "Hello from v2!"
    asked = first.requests
    first.serve("v1-new", models["v1"])  # the old server's new model is no longer pulled
    await bot.pulls(4)
    assert await bot.greeting() == "Hello from v2!"
    assert first.requests == asked
    assert second.requests >= 4


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("500", "answered 500"),
        ("404", "has no model at this URL (404)"),
        ("garbage", "sent a file that is not a valid model"),
        ("no token", "refused the request (401): check the token"),
        ("down", "cannot be reached"),
    ],
)
async def test_a_server_that_brings_no_model_changes_nothing(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    fault: str,
    said: str,
) -> None:
    followed = await model_server()
    followed.serve("v1", models["v1"])
    bot = await start_bot(block(followed.url))
    other = await model_server()
    other.serve("v2", models["v2"])
    url = other.url
    extra: dict[str, Any] = {}
    if fault == "down":
        url = f"http://127.0.0.1:{free_port()}/models/default"
    elif fault == "no token":
        extra["token"] = "wrong-token"
    else:
        other.fault = fault

    status, answer = await put(bot, {"model_server": server_block(url, **extra)})
    assert status == 502, answer
    assert answer is not None and answer["reason"] == "ModelServerError"
    assert said in answer["message"] and "the model being served stays" in answer["message"]
    assert "wrong-token" not in answer["message"] and TOKEN not in answer["message"]
    assert await bot.greeting() == "Hello from v1!"
    followed.serve("v2", models["v2"])  # the model server followed before is still followed
    await greets(bot, "Hello from v2!")


async def test_without_a_model_the_answer_says_none_is_served(
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    bot = await start_bot(None, local=models["v1"])
    assert (await bot.client.delete("/model")).status == 204
    url = f"http://127.0.0.1:{free_port()}/models/default"
    status, answer = await put(bot, {"model_server": server_block(url)})
    assert status == 502 and answer is not None
    assert answer["message"].endswith("; no model is served"), answer


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"model_server": "http://127.0.0.1:1/m"}, "'model_server' must be an object"),
        ({"model_server": {"token": "x"}}, "the request body: model_server needs 'url'"),
        ({"model_server": {}}, "'model_file' is missing"),  # Rasa: {} and null name none
        ({"model_server": None, "remote_storage": None}, "'model_file' is missing"),
        ({"model_server": {"url": "ftp://127.0.0.1/m"}}, "needs 'url'"),
        ({"model_server": {"url": "http://[::1/m"}}, "'url' 'http://[::1/m' is not a valid URL"),
        ({"model_server": {"url": "http://h:99999/m"}}, "is not a valid URL"),
        ({"model_server": {"url": "http:///m"}}, "names no host"),
        (
            {"model_server": {"url": "http://h/m", "wait_time_between_pulls": -1}},
            "model_server: 'wait_time_between_pulls' must be a number of seconds >= 0",
        ),
        ({"model_server": {"url": "http://h/m", "params": [1]}}, "'params' must be a mapping"),
        ({"model_server": {"url": "http://h/m", "timeout": "soon"}}, "'timeout' must be"),
        (
            {"model_server": {"url": "http://h/m"}, "remote_storage": "aws"},
            "remote_storage: cloud model storage is not provided",
        ),
        ({"remote_storage": "aws"}, "remote_storage: cloud model storage is not provided"),
    ],
)
async def test_a_body_that_names_no_usable_server_is_a_400(
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
    body: dict[str, Any],
    said: str,
) -> None:
    bot = await start_bot(None, local=models["v1"])
    status, answer = await put(bot, body)
    assert status == 400, answer
    assert answer is not None and said in answer["message"], answer
    assert await bot.greeting() == "Hello from v1!"


async def test_a_json_body_sent_as_another_type_names_a_server_too(
    model_server: Callable[..., Awaitable[ModelServer]],
    start_bot: Callable[..., Awaitable[Bot]],
    models: dict[str, bytes],
) -> None:
    """``curl -X PUT -d '{...}'`` sends Rasa's JSON body as a form."""
    server = await model_server()
    server.serve("v2", models["v2"])
    bot = await start_bot(None, local=models["v1"])
    data = json.dumps({"model_server": {"url": server.url, "token": TOKEN}})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await bot.client.put("/model", data=data, headers=headers)
    assert response.status == 204, await response.text()
    assert await bot.greeting() == "Hello from v2!"


@pytest.mark.parametrize(
    ("url", "said"),
    [("http://[::1/models", "is not a valid URL"), ("https://:8080/m", "names no host")],
)
def test_endpoints_with_a_url_that_is_no_url_name_the_file(
    tmp_path: Path, url: str, said: str
) -> None:
    """Was a ValueError from the URL parser: a traceback at startup."""
    (tmp_path / "endpoints.yml").write_text(f"models:\n  url: '{url}'\n")
    with pytest.raises(ConfigError) as raised:
        resolve_settings(ServerSettings(project_dir=tmp_path))
    assert "endpoints.yml:1: models: 'url'" in str(raised.value) and said in str(raised.value)
