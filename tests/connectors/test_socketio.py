"""The socket.io channel, driven by a real socket.io client over a real loopback port."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.server.settings import RateLimit, ServerSettings
from connectors.session_keys import SessionKeys
from connectors.socketio import SocketIOChannel, history_messages, socketio_messages
from tests.connectors.servers import WAIT, ServeChannel, Served


class Client:
    """A socket.io client that queues what the server emits, for the test to await."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirms: asyncio.Queue[Any] = asyncio.Queue()
        self.bot: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sio.on("session_confirm", self.confirms.put)
        self.sio.on("bot_uttered", self.bot.put)

    async def session(self, key: str | None = None) -> str:
        await self.sio.emit("session_request", {"session_id": key})
        return await asyncio.wait_for(self.confirms.get(), WAIT)

    async def say(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        """Send a message and return every ``bot_uttered`` up to the server's ack."""
        ack = await self.sio.call("user_uttered", {"message": text, **extra}, timeout=WAIT)
        assert ack == {"ok": True}, ack
        replies = []
        while not self.bot.empty():
            replies.append(self.bot.get_nowait())
        return replies


@asynccontextmanager
async def connected(served: Served, **kwargs: Any) -> AsyncIterator[Client]:
    client = Client()
    await client.sio.connect(served.url, transports=["websocket"], wait_timeout=WAIT, **kwargs)
    try:
        yield client
    finally:
        await client.sio.disconnect()


async def test_a_conversation_with_buttons_an_image_and_its_history(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    async with serve_channel(SocketIOChannel()) as served:
        async with connected(served) as client:
            key = await client.session()
            replies = await client.say("/greet")
            assert len(replies) == 1 and replies[0]["text"]
            asked = await client.say("/request_restaurant")
            assert asked == [
                {
                    "text": "What cuisine would you like?",
                    "quick_replies": [
                        {"content_type": "text", "title": title, "payload": payload}
                        for title, payload in [
                            ("Italian", '/inform{"cuisine": "italian"}'),
                            ("Chinese", '/inform{"cuisine": "chinese"}'),
                            ("Mexican", '/inform{"cuisine": "mexican"}'),
                            ("Indian", '/inform{"cuisine": "indian"}'),
                        ]
                    ],
                }
            ]
            await client.say(asked[0]["quick_replies"][0]["payload"])
            await client.say('/inform{"number": 2}')
            await client.say("/affirm")
            done = await client.say("/deny")
            images = [r for r in done if "attachment" in r]
            assert images == [
                {
                    "attachment": {
                        "type": "image",
                        "payload": {"src": "https://picsum.photos/seed/terrace/400/300"},
                    }
                }
            ]

        conversation_id = key.rsplit(".", 1)[0]
        stored = await agent.store.load(conversation_id)
        assert [e["text"] for e in stored.events if e["event"] == "user"][:2] == [
            "/greet",
            "/request_restaurant",
        ]

        async with connected(served) as again:
            assert await again.session(key) == key
            history = await again.sio.call("session_history", {}, timeout=WAIT)
        users = [item["text"] for item in history if item["sender"] == "user"]
        assert users[:3] == ["/greet", "/request_restaurant", "Italian"]
        assert history[-1]["sender"] == "bot"


async def test_a_session_key_the_server_did_not_sign_starts_a_new_conversation(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    async with serve_channel(SocketIOChannel()) as served:
        async with connected(served) as victim:
            key = await victim.session()
            await victim.say("/greet")
        conversation_id = key.rsplit(".", 1)[0]
        other_servers_key = SessionKeys("another server's secret").issue()[1]
        for presented in [conversation_id, f"{conversation_id}.forged", other_servers_key]:
            async with connected(served) as intruder:
                confirmed = await intruder.session(presented)
                history = await intruder.sio.call("session_history", {}, timeout=WAIT)
                # A message naming the victim's session still goes to the intruder's own.
                await intruder.say("/goodbye", session_id=key)
            assert confirmed not in (key, presented)
            assert history == []
        stored = await agent.store.load(conversation_id)
        assert [e["text"] for e in stored.events if e["event"] == "user"] == ["/greet"]


async def test_without_session_persistence_each_socket_is_its_own_conversation(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    channel = SocketIOChannel(session_persistence=False)
    async with serve_channel(channel) as served, connected(served) as client:
        await client.say("/greet")  # Rasa's clients may talk before any session_request
        assert await agent.store.conversation_ids() == [client.sio.get_sid()]


async def test_a_message_before_session_request_is_the_sockets_own_conversation(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    """A client that sends no session_request is answered as without session persistence (it
    was refused; Rasa's server ignores it in silence)."""
    async with serve_channel(SocketIOChannel()) as served, connected(served) as client:
        assert [m.get("text") for m in await client.say("/greet")]  # answered
        assert await agent.store.conversation_ids() == [client.sio.get_sid()]


async def test_custom_event_names_path_and_metadata_key(
    serve_channel: ServeChannel, agent: Agent
) -> None:
    channel = SocketIOChannel.from_credentials(
        {
            "user_message_evt": "user_says",
            "bot_message_evt": "bot_says",
            "socketio_path": "/chat-socket/",
            "metadata_key": "customData",
        }
    )
    async with serve_channel(channel) as served:
        client = socketio.AsyncClient(reconnection=False)
        said: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        client.on("bot_says", said.put)
        await client.connect(served.url, socketio_path="chat-socket", transports=["websocket"])
        try:
            await client.call("session_request", {"session_id": None}, timeout=WAIT)
            await client.emit("user_says", {"message": "/greet", "customData": '{"page": "x"}'})
            assert (await asyncio.wait_for(said.get(), WAIT))["text"]
        finally:
            await client.disconnect()
    (conversation_id,) = await agent.store.conversation_ids()
    stored = await agent.store.load(conversation_id)
    user = next(e for e in stored.events if e["event"] == "user")
    assert user["metadata"] == {"page": "x"}
    assert user["input_channel"] == "socketio"


@pytest.mark.parametrize(
    ("allowed", "origin", "accepted"),
    [
        (None, "http://another.example", True),  # Rasa's socket server takes any origin
        (None, "SAME", True),
        ([], "http://another.example", True),
        (["https://shop.example"], "https://shop.example", True),
        (["https://shop.example"], "http://evil.example", False),
        ("*", "http://anything.example", True),
    ],
)
async def test_cross_origin_connections_where_allowed(
    serve_channel: ServeChannel, allowed: Any, origin: str, accepted: bool
) -> None:
    channel = SocketIOChannel.from_credentials({"cors_allowed_origins": allowed})
    async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
        headers = {"Origin": served.url if origin == "SAME" else origin}
        url = f"{served.url}/socket.io/?EIO=4&transport=polling"
        async with http.get(url, headers=headers) as response:
            assert (response.status == 200) is accepted, response.status


async def test_a_jwt_is_required_when_a_key_is_configured(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    channel = SocketIOChannel.from_credentials({"jwt_key": "s3cret-s3cret-s3cret-s3cret-32b!"})
    async with serve_channel(channel) as served:
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with connected(served):
                pass
        for bad in ("Bearer \ud800", "a.\udcff.c", 5, "not.a.jwt"):  # refused, none of them a crash
            with pytest.raises(socketio.exceptions.ConnectionError):
                async with connected(served, auth={"token": bad}):
                    pass
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        token = jwt.encode({"sub": "someone"}, "s3cret-s3cret-s3cret-s3cret-32b!", "HS256")
        async with connected(served, auth={"token": token}) as client:
            assert await client.session()


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"user_message_evt": ""}, "user_message_evt"),
        ({"session_persistence": "yes"}, "session_persistence"),
        ({"session_secret": "short"}, "session_secret"),
        ({"cors_allowed_origins": 5}, "cors_allowed_origins"),
        ({"socket_path": "/x"}, "socket_path"),
    ],
)
def test_bad_credentials_name_the_key(params: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        SocketIOChannel.from_credentials(params)


@pytest.mark.parametrize(
    ("message", "emitted"),
    [
        ({"text": "Hi"}, [{"text": "Hi"}]),
        ({"text": "One\n\nTwo"}, [{"text": "One"}, {"text": "Two"}]),
        (
            {"text": "Pick\n\none", "buttons": [{"title": "A", "payload": "/a"}]},
            [
                {"text": "Pick"},
                {
                    "text": "one",
                    "quick_replies": [{"content_type": "text", "title": "A", "payload": "/a"}],
                },
            ],
        ),
        (
            {"image": "https://x.example/a.png"},
            [{"attachment": {"type": "image", "payload": {"src": "https://x.example/a.png"}}}],
        ),
        (
            {"attachment": {"type": "video", "payload": {}}},
            [{"attachment": {"type": "video", "payload": {}}}],
        ),
        (  # a button without a payload sends its title (Rasa 3); buttons without a text
            {"buttons": [{"title": "Yes"}]},
            [
                {
                    "text": "",
                    "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "Yes"}],
                }
            ],
        ),
        ({"custom": {"kind": "map"}}, [{"kind": "map"}]),
        ({"custom": {"data": {"kind": "map"}}}, [{"kind": "map"}]),
        (
            {"elements": [{"title": "T"}]},
            [
                {
                    "attachment": {
                        "type": "template",
                        "payload": {"template_type": "generic", "elements": [{"title": "T"}]},
                    }
                }
            ],
        ),
    ],
)
def test_bot_messages_as_rasa_emits_them(
    message: dict[str, Any], emitted: list[dict[str, Any]]
) -> None:
    assert socketio_messages({"recipient_id": "x", **message}) == emitted


def test_history_shows_a_clicked_button_by_its_title() -> None:
    events: list[dict[str, Any]] = [
        {"event": "user", "text": "/greet"},
        {
            "event": "bot",
            "text": "Sit outside?",
            "data": {"buttons": [{"title": "Yes", "payload": "/affirm"}]},
        },
        {"event": "user", "text": "/affirm"},
        {"event": "user", "text": "/affirm"},
    ]
    assert history_messages(events, "c") == [
        {"sender": "user", "text": "/greet"},
        {
            "sender": "bot",
            "text": "Sit outside?",
            "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "/affirm"}],
        },
        {"sender": "user", "text": "Yes"},
        {"sender": "user", "text": "/affirm"},
    ]


def test_session_keys_verify_only_what_they_issued() -> None:
    keys = SessionKeys("a secret of some length")
    conversation_id, key = keys.issue()
    assert keys.conversation_of(key) == conversation_id
    assert SessionKeys("a secret of some length").conversation_of(key) == conversation_id
    for bad in [conversation_id, key + "x", key.upper(), "", None, 5, "é." + key, "." + key]:
        assert keys.conversation_of(bad) is None


async def test_the_servers_rate_limit_applies_to_the_chat(
    serve_channel: ServeChannel, tmp_path: Path
) -> None:
    settings = ServerSettings(project_dir=tmp_path, rate_limit=RateLimit(2, 60.0))
    async with serve_channel(SocketIOChannel(), settings) as served, connected(served) as client:
        await client.session()
        await client.say("/greet")
        await client.say("/goodbye")
        ack = await client.sio.call("user_uttered", {"message": "/greet"}, timeout=WAIT)
        assert ack["ok"] is False and "too many messages" in ack["error"]


async def test_the_per_client_limit_counts_every_socket_of_one_address(
    serve_channel: ServeChannel, tmp_path: Path
) -> None:
    """Two sockets (two conversations) of one client share its limit; behind a trusted proxy,
    the address its X-Forwarded-For names is the client."""
    settings = ServerSettings(
        project_dir=tmp_path,
        rate_limit=None,
        client_rate_limit=RateLimit(2, 60.0),
        forwarded_allow_ips=("127.0.0.1",),
    )
    async with serve_channel(SocketIOChannel(), settings) as served:
        async with connected(served) as first, connected(served) as second:
            await first.session()
            await second.session()
            await first.say("/greet")
            await second.say("/greet")
            ack = await second.sio.call("user_uttered", {"message": "/greet"}, timeout=WAIT)
            assert ack["ok"] is False and "too many messages from this address" in ack["error"]
        forwarded = {"X-Forwarded-For": "203.0.113.4"}
        async with connected(served, headers=forwarded) as other:
            await other.session()
            await other.say("/greet")  # another client behind the proxy


async def test_shutdown_does_not_wait_for_connected_clients(serve_channel: ServeChannel) -> None:
    client = Client()
    async with serve_channel(SocketIOChannel()) as served:
        await client.sio.connect(served.url, transports=["websocket"], wait_timeout=WAIT)
        await client.session()
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # not the runner's shutdown_timeout (5 s)
    await client.sio.disconnect()


async def test_an_external_event_reaches_the_conversations_socket(
    serve_channel: ServeChannel, agent: Agent, tmp_path: Path
) -> None:
    """``trigger_intent?output_channel=latest`` (reminders go the same way): emitted to the
    socket of the conversation (its room), not returned."""
    settings = ServerSettings(project_dir=tmp_path, enable_api=True, rate_limit=None)
    async with serve_channel(SocketIOChannel(), settings) as served, connected(served) as client:
        await client.session()
        await client.say("/greet")
        (conversation,) = await agent.store.conversation_ids()
        url = f"{served.url}/conversations/{conversation}/trigger_intent?output_channel=latest"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json={"name": "bot_challenge"}) as response,
        ):
            assert response.status == 200
            assert "messages" not in await response.json()
        emitted = await asyncio.wait_for(client.bot.get(), WAIT)
    assert emitted["text"].startswith("I am a bot")


async def test_malformed_packets_are_dropped_with_one_line_and_the_socket_goes_on(
    serve_channel: ServeChannel, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    # Engine.IO / socket.io v4 frames written by hand: python-socketio's client writes none of
    # these. A NaN would have been stored in the message's metadata; the others were tracebacks.
    malformed = [
        '42["user_uttered",{"message":"/goodbye","session_id":null,"metadata":{"a":NaN}}]',
        '42["user_uttered",' + "[" * 5000 + "]" * 5000 + "]",
        "42[garbage",
        "49",  # no socket.io packet type
        "42",  # an event without its name and arguments
        "42[1]",  # an event whose name is no text
        "4",  # an empty socket.io packet (an event without data to python-socketio)
        "43",  # an ack without arguments
    ]
    async with serve_channel(SocketIOChannel(session_persistence=False)) as served:
        url = f"{served.url}/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert (await ws.receive_str(timeout=WAIT)).startswith("0{")  # Engine.IO open
            await ws.send_str("40")  # socket.io connect to "/"
            assert (await ws.receive_str(timeout=WAIT)).startswith("40{")
            with caplog.at_level(logging.WARNING):
                for frame in malformed:
                    await ws.send_str(frame)
                await ws.send_str('421["user_uttered",{"message":"/greet"}]')  # ack id 1
                frames = [await ws.receive_str(timeout=WAIT) for _ in range(2)]
    assert frames[0].startswith('42["bot_uttered"') and frames[1] == '431[{"ok":true}]'
    dropped = [r for r in caplog.records if "malformed packet was dropped" in r.getMessage()]
    assert len(dropped) == len(malformed)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    [conversation] = await agent.store.conversation_ids()
    stored = (await agent.store.load(conversation)).events
    assert [e["text"] for e in stored if e["event"] == "user"] == ["/greet"]


async def test_websocket_frames_that_are_no_engineio_packets_are_dropped_with_one_line(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    # python-engineio ended the connection with a traceback for "x" and "" (read outside its
    # error handling) and logged one for "9" (no packet type) and "b!!!" (base64 of nothing).
    frames = ["9", "x", "", "b!!!", "bQQ"]
    async with serve_channel(SocketIOChannel(session_persistence=False)) as served:
        url = f"{served.url}/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert (await ws.receive_str(timeout=WAIT)).startswith("0{")  # Engine.IO open
            await ws.send_str("40")
            assert (await ws.receive_str(timeout=WAIT)).startswith("40{")
            with caplog.at_level(logging.WARNING):
                for frame in frames:
                    await ws.send_str(frame)
                await ws.send_str('421["user_uttered",{"message":"/greet"}]')
                answers = [await ws.receive_str(timeout=WAIT) for _ in range(2)]
    assert answers[0].startswith('42["bot_uttered"') and answers[1] == '431[{"ok":true}]'
    dropped = [r for r in caplog.records if "was dropped" in r.getMessage()]
    assert len(dropped) == len(frames)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_polling_requests_with_unreadable_packets_are_one_line_each(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    # python-engineio logged a traceback for each (a polling body is packets split by \x1e).
    bodies = ["9", "x", "40\x1e9", "bQQ"]
    async with serve_channel(SocketIOChannel(session_persistence=False)) as served:
        url = f"{served.url}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                session = f"{url}&sid={json.loads((await response.text())[1:])['sid']}"
            async with http.post(session, data="40") as response:
                assert response.status == 200
            async with http.get(session) as response:
                assert (await response.text()).startswith("40")
            with caplog.at_level(logging.WARNING):
                for body in bodies:
                    async with http.post(session, data=body) as response:
                        assert response.status < 500
    assert len([r for r in caplog.records if "was dropped" in r.getMessage()]) == len(bodies)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_session_key_stays_good_after_a_restart(
    serve_channel: ServeChannel, agent: Agent, tmp_path: Path
) -> None:
    """Without session_secret the server keeps the secret it made in the project's .chatbot/:
    rasa-webchat keeps its key across a restart or deploy, and went on in a new conversation,
    the old one's history still on screen."""
    (tmp_path / "domain.yml").write_text('version: "3.1"\n')  # a project's folder
    settings = ServerSettings(project_dir=tmp_path)
    async with (
        serve_channel(SocketIOChannel(), settings=settings) as served,
        connected(served) as client,
    ):
        key = await client.session()
        await client.say("/greet")
    secret = tmp_path / ".chatbot" / "socketio_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    async with (  # restarted
        serve_channel(SocketIOChannel(), settings=settings) as served,
        connected(served) as client,
    ):
        assert await client.session(key) == key
        history = await client.sio.call("session_history", {}, timeout=WAIT)
    assert [item["text"] for item in history if item["sender"] == "user"] == ["/greet"]
    secret.write_text("short\n")  # a damaged file: keys for this run only, and a warning
    async with (
        serve_channel(SocketIOChannel(), settings=settings) as served,
        connected(served) as client,
    ):
        assert await client.session(key) != key


async def test_a_socketio_2_client_is_refused_with_one_line_saying_what_to_use(
    serve_channel: ServeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    # rasa-webchat 1.0.0 speaks Engine.IO 3, which Rasa 3 refuses too; the line said neither
    # why nor what to do, and python-engineio's own handler printed it a second time.
    async with serve_channel(SocketIOChannel()) as served, aiohttp.ClientSession() as http:
        with caplog.at_level(logging.INFO):
            for _ in range(2):
                url = f"{served.url}/socket.io/?EIO=3&transport=polling"
                async with http.get(url) as response:
                    assert response.status == 400
    refused = [r for r in caplog.records if "socket.io 2" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert "rasa-webchat 1.0.1" in refused[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [
        h for h in logging.getLogger("engineio.server").handlers if type(h) is logging.StreamHandler
    ]
