"""Rasa's ``rasa run`` options that a Rasa project's start command may carry: each does what it
says here, or says why it cannot (``--remote-storage``), instead of "no such option"."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from chatbot.agent import Agent, TrainedModel
from chatbot.cli import main
from chatbot.errors import ConfigError
from chatbot.log_setup import apply_log_options, syslog_handler
from chatbot.project.endpoints import Credentials, EndpointBlock
from chatbot.server.app import resolve_settings, serve
from chatbot.server.settings import LogOptions, ServerSettings
from tests.chatbot.server.support import StartServer, say
from tests.chatbot.store.mp_server import copy_moodbot
from tests.helpers import DOMAINS, ROOT, kept_logging


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, put back as it was after the test."""
    with kept_logging() as root:
        yield root


def served_settings(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> ServerSettings:
    """What ``chatbot run ARGS`` would serve with (``serve`` caught before it listens)."""
    caught: list[ServerSettings] = []
    monkeypatch.setattr("chatbot.server.app.serve", caught.append)
    model = next((DOMAINS / "moodbot").glob("models/*.model"), None)
    project = ["--project", str(DOMAINS / "moodbot")]
    if model is None:
        project += ["--model", str(Path(__file__))]  # never loaded: serve is caught
    result = CliRunner().invoke(main, ["run", *project, *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return caught[0]


def test_rasa_run_options_set_what_rasa_sets(
    monkeypatch: pytest.MonkeyPatch, root_logging: logging.Logger, tmp_path: Path
) -> None:
    for name in ("CHATBOT_AUTH_TOKEN", "CHATBOT_JWT_SECRET", "CHATBOT_JWT_METHOD"):
        monkeypatch.delenv(name, raising=False)
    settings = served_settings(
        monkeypatch,
        "--response-timeout",
        "120",
        "--request-timeout",
        "300",
        "--connector",
        "rest",
        "--jwt-private-key",
        "private",
        AUTH_TOKEN="rasa-token",
        JWT_SECRET="rasa-secret",
        JWT_METHOD="HS512",
    )
    assert settings.response_timeout == 120 and settings.body_timeout == 300
    cors = served_settings(monkeypatch, "--cors", "https://a.example", "https://b.example").cors
    assert cors == ("https://a.example", "https://b.example")  # Rasa's --cors a b
    assert settings.connector == "rest"
    assert (settings.auth_token, settings.jwt_secret, settings.jwt_method) == (
        "rasa-token",
        "rasa-secret",
        "HS512",
    )
    # Ours first where both are set.
    settings = served_settings(monkeypatch, AUTH_TOKEN="rasa", CHATBOT_AUTH_TOKEN="ours")
    assert settings.auth_token == "ours"


@pytest.mark.parametrize(
    ("flag", "level"), [("-vv", logging.DEBUG), ("--quiet", logging.WARNING), ("-v", logging.INFO)]
)
def test_rasa_logging_levels(
    flag: str, level: int, monkeypatch: pytest.MonkeyPatch, root_logging: logging.Logger
) -> None:
    root_logging.setLevel(logging.ERROR)
    served_settings(monkeypatch, flag)
    assert root_logging.level == level


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("run", ["--response-timeout", "nan"], "'nan' is not a finite number"),
        ("run", ["--request-timeout", "inf"], "'inf' is not a finite number"),
        ("run", ["--shutdown-timeout", "nan"], "'nan' is not a finite number"),
        ("run", ["--port", "70000"], "70000 is not in the range 0<=x<=65535"),
        ("run", ["--max-body-size", "-1"], "-1 is not in the range x>=1"),
        ("run", ["--max-message-length", "0"], "0 is not in the range x>=1"),
        ("export", ["--minimum-timestamp", "nan"], "'nan' is not a finite number"),
        ("data split nlu", ["--training-fraction", "nan"], "'nan' is not a finite number"),
    ],
)
def test_numbers_that_are_no_numbers_are_usage_errors(
    root_logging: logging.Logger, command: str, args: list[str], message: str
) -> None:
    # click's FloatRange lets NaN through every bound (each comparison with NaN is false).
    result = CliRunner().invoke(main, [*command.split(), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_remote_storage_is_refused_in_one_line(root_logging: logging.Logger) -> None:
    result = CliRunner().invoke(
        main, ["run", "--project", str(DOMAINS / "moodbot"), "--remote-storage", "aws"]
    )
    assert result.exit_code == 1
    assert "--remote-storage aws: models from cloud storage are not provided" in result.output
    assert "Traceback" not in result.output


def test_connector_mounts_that_channel_alone(root_logging: logging.Logger) -> None:
    blocks = {
        "rest": EndpointBlock("rest", {}),
        "socketio": EndpointBlock("socketio", {"session_persistence": False}),
    }
    settings = resolve_settings(
        ServerSettings(credentials=Credentials(dict(blocks)), connector="socketio")
    )
    assert settings.credentials is not None
    assert list(settings.credentials.channels) == ["socketio"]
    assert settings.credentials.channels["socketio"].params == {"session_persistence": False}
    alone = resolve_settings(ServerSettings(project_dir=Path("/nonexistent"), connector="rest"))
    assert alone.credentials is not None and list(alone.credentials.channels) == ["rest"]


@pytest.mark.parametrize(
    ("connector", "entries"),
    [
        (
            None,
            "(REST: POST /webhooks/rest/webhook, socket.io: /chat, "
            "callback: POST /webhooks/callback/webhook)",
        ),
        ("socketio", "(socket.io: /chat)"),
    ],
)
def test_the_ready_line_names_the_channels_mounted(
    connector: str | None,
    entries: str,
    moodbot_model: TrainedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--connector socketio`` mounts no REST channel: the line does not send clients there."""
    project = copy_moodbot(tmp_path)
    model = project / "moodbot.model"
    moodbot_model.to_file(model)
    (project / "credentials.yml").write_text(
        "rest:\nsocketio:\n  socketio_path: /chat\ncallback:\n  url: http://127.0.0.1:9/bot\n"
    )

    def run_app(app: web.Application, *, print: Any, **_: Any) -> None:
        print("listening")  # as aiohttp does once the socket listens

    monkeypatch.setattr(web, "run_app", run_app)
    settings = ServerSettings(
        project_dir=project, model_path=model, connector=connector, host="127.0.0.1", port=5999
    )
    serve(settings)
    line = capsys.readouterr().out
    assert line.startswith("Bot 'moodbot' is up in ")
    assert line.endswith(f" s: http://127.0.0.1:5999 {entries}\n"), line


async def test_a_request_past_the_response_timeout_gets_a_503_and_stores_no_half_turn(
    start_server: StartServer, moodbot_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = Agent(moodbot_model)
    client = await start_server(agent, ServerSettings(response_timeout=0.3, rate_limit=None))
    assert await say(client, "ann", "/greet")  # quick: answered

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        await asyncio.sleep(0.6)  # longer than the deadline: websockets are not cut
        await socket_.send_str("still here")
        await socket_.close()
        return socket_

    client.app.router._frozen = False  # a route for this test only
    client.app.router.add_get("/test-ws", ws)
    async with client.ws_connect("/test-ws") as connection:
        assert (await connection.receive()).data == "still here"

    processor = agent.processor
    run_action = processor.run_action

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        return await run_action(*args, **kwargs)

    monkeypatch.setattr(processor, "run_action", slow)
    before = len((await agent.store.load("ann")).events)
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "ann", "message": "/greet"}
    )
    assert response.status == 503
    body = await response.json()
    assert body["reason"] == "ResponseTimeout" and "0.3 s" in body["message"]
    assert len((await agent.store.load("ann")).events) == before


def test_syslog_gets_the_log(root_logging: logging.Logger) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        apply_log_options(LogOptions(syslog=("127.0.0.1", port, "udp")))
        logging.getLogger("chatbot.test").warning("turn conversation=%s", "a\nforged line")
        datagram = server.recv(4096).decode()
    assert (
        "chatbot[" in datagram and "WARNING chatbot.test: turn conversation=a\\nforged" in datagram
    )


def test_syslog_mistakes_are_named(root_logging: logging.Logger) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"--syslog-address 127.0.0.1:{port} \(tcp\)"):
        apply_log_options(LogOptions(syslog=("127.0.0.1", port, "tcp")))
    with pytest.raises(ConfigError, match="--syslog-protocol sctp: use UDP or TCP"):
        apply_log_options(LogOptions(syslog=("127.0.0.1", port, "sctp")))


def test_a_syslog_handler_that_never_connected_closes_quietly() -> None:
    """Python 3.10's SysLogHandler has no ``socket`` where connecting failed, yet logging closes
    it at exit: that raised, a traceback after the one-line error of a syslog server that is
    down (and broke any later --logging-config-file in the process)."""
    handler = syslog_handler("127.0.0.1", 9, socket.SOCK_DGRAM)  # UDP: nothing connects
    handler.socket.close()
    del handler.socket  # as 3.10 leaves it
    handler.close()  # no AttributeError
    assert handler not in logging.getLogger().handlers


def test_logging_config_file(root_logging: logging.Logger, tmp_path: Path) -> None:
    log = tmp_path / "chatbot.log"
    config = tmp_path / "logging.yml"
    config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters: {plain: {format: 'CFG %(levelname)s %(message)s'}}\n"
        f"handlers: {{file: {{class: logging.FileHandler, filename: '{log}', formatter: plain}}}}\n"
        "root: {level: INFO, handlers: [file]}\n"
    )
    apply_log_options(LogOptions(config_file=config))
    logging.getLogger("chatbot.test").info("configured")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "CFG INFO configured" in log.read_text()

    config.write_text("version: 1\nhandlers: [oops\n")
    with pytest.raises(ConfigError, match=r"logging.yml:\d+: not valid YAML"):
        apply_log_options(LogOptions(config_file=config))
    config.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"a mapping .* is expected"):
        apply_log_options(LogOptions(config_file=config))
    config.write_text("version: 1\nhandlers: {h: {class: no.such.Handler}}\n")
    with pytest.raises(ConfigError, match=r"--logging-config-file .*logging.yml: "):
        apply_log_options(LogOptions(config_file=config))
    with pytest.raises(ConfigError, match="file not found"):
        apply_log_options(LogOptions(config_file=tmp_path / "missing.yml"))


def test_a_port_in_use_or_an_unknown_host_is_one_line(
    moodbot_model: TrainedModel, tmp_path: Path
) -> None:
    """Not a traceback: another server has the port, or the host name does not resolve."""
    model = tmp_path / "moodbot.model"
    moodbot_model.to_file(model)
    project = copy_moodbot(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for host, said in (
            ("127.0.0.1", f"error: cannot listen on 127.0.0.1:{port}: Address already in use"),
            ("no-such-host.invalid", "error: --host no-such-host.invalid: "),
        ):
            command = ["run", "--project", str(project), "--model", str(model)]
            done = subprocess.run(
                [sys.executable, "-m", "chatbot", *command, "--host", host, "--port", str(port)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=120,
            )
            assert done.returncode == 1, done.stderr
            assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
