"""``chatbot run`` without its database: at start it waits for it (``--wait-for-store``), then
says so in one line and exits; while running, a user gets a short apology and the client a 503,
until the database is back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import make_url

from chatbot.server.errors import APOLOGY
from tests.chatbot.store.mp_server import (  # noqa: F401 (fixtures)
    Server,
    ServerLauncher,
    check_answers,
    check_log,
    client_session,
    free_port,
    launcher_fixture,
    moodbot_model_file_fixture,
    read_store,
    send,
    tag_of,
    wait_ready,
    write_endpoints,
)
from tests.services import TcpProxy

# Internals a user or a client must not be shown.
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "Errno", "5432")


def unreachable_database(folder: Path) -> tuple[int, Path]:
    """A port nothing listens on, and endpoints.yml naming a PostgreSQL store there."""
    port = free_port()
    endpoints = write_endpoints(
        folder / "endpoints.yml",
        postgres_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/conversations",
    )
    return port, endpoints


async def test_a_database_unreachable_at_start_is_one_line_and_a_failed_exit(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    port, endpoints = unreachable_database(tmp_path)
    server = launcher.spawn(endpoints, "--wait-for-store", "0")

    # It must exit by itself, promptly; a server that comes up without its database fails the
    # test at once instead of being waited for.
    came_up = await wait_ready(server)
    status = server.process.poll()
    output = server.log()
    assert not came_up, f"the server came up without its database:\n{output}"
    assert status is not None, f"the server neither exited nor came up:\n{output}"
    assert status != 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output, output
    assert len(lines) == 1, f"expected one line, got:\n{output}"
    assert f"127.0.0.1:{port}/conversations" in lines[0], lines[0]
    assert "postgresql" in lines[0] and "unavailable" in lines[0], lines[0]


async def test_a_database_still_unreachable_when_the_wait_runs_out_is_a_failed_exit(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    port, endpoints = unreachable_database(tmp_path)
    started = time.monotonic()
    server = launcher.spawn(endpoints, "--wait-for-store", "2")
    assert not await wait_ready(server)
    waited = time.monotonic() - started
    output = server.log()
    assert server.process.poll() not in (None, 0), output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    # A warning for each try (after 0.5 s, 1 s, then what is left), then the one error line.
    tries = [line for line in lines if "trying again in" in line]
    assert len(tries) >= 2 and all(f"127.0.0.1:{port}/conversations" in t for t in tries), output
    assert "--wait-for-store" in tries[0], tries[0]
    assert "unavailable" in lines[-1] and "trying again" not in lines[-1], output
    assert waited >= 2, waited


async def until_waiting(server: Server, timeout: float) -> None:
    """Until the server logs that it waits for its store ("trying again in"), at most
    ``timeout`` seconds; it must not exit meanwhile."""
    give_up = time.monotonic() + timeout
    while "trying again in" not in server.log() and time.monotonic() < give_up:
        assert server.process.poll() is None, server.log()
        await asyncio.sleep(0.05)


async def test_sigterm_stops_a_server_waiting_for_its_database(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    _, endpoints = unreachable_database(tmp_path)
    server = launcher.spawn(endpoints)  # would wait 60 s
    await until_waiting(server, timeout=60)
    server.process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    while server.process.poll() is None and time.monotonic() - stopped < 10:
        await asyncio.sleep(0.1)
    assert server.process.poll() is not None, "still waiting after SIGTERM"
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.services
async def test_a_database_that_comes_up_after_the_bot_is_waited_for(
    launcher: ServerLauncher, postgres_url: str, tmp_path: Path
) -> None:
    # A docker-compose file starts the bot and its database together: the bot is ready first.
    database = make_url(postgres_url)
    proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    proxy.port = free_port()  # where the database will be; nothing listens there yet
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml", postgres_url=postgres_url, postgres_port=proxy.port
    )
    server = launcher.spawn(endpoints)  # the default wait: 60 s
    try:
        # The database comes up only once the bot has tried it and said it waits: on a slow
        # machine a fixed head start could end before the bot's first attempt.
        await until_waiting(server, timeout=45)
        assert "trying again in" in server.log(), server.log()
        await proxy.start()
        assert await wait_ready(server), server.log()
        async with client_session() as session:
            answer = await send(session, server.url, "lee", "/greet", tag_of(0, 0))
            assert answer.status == 200 and answer.reply, answer
        assert server.process.poll() is None, server.log()
    finally:
        await proxy.stop()


@pytest.mark.services
async def test_a_lock_store_that_refuses_at_start_is_a_failed_exit_saying_why(
    launcher: ServerLauncher, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    # A wrong password used to start the bot and fail every message on its lock.
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml", postgres_url=postgres_url, redis_url=redis_url
    )
    blocks = yaml.safe_load(endpoints.read_text())
    blocks["lock_store"]["password"] = "wrong"
    endpoints.write_text(yaml.safe_dump(blocks))
    server = launcher.spawn(endpoints, "--wait-for-store", "0")
    assert not await wait_ready(server)
    output = server.log()
    assert server.process.poll() not in (None, 0), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output, output
    assert lines[-1].startswith("error: lock store unavailable (redis at"), output
    assert "AUTH" in lines[-1], lines[-1]  # Redis's own reason


@pytest.mark.services
async def test_a_database_lost_while_running_costs_an_apology_and_a_503_then_recovers(
    launcher: ServerLauncher,
    postgres_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> None:
    database = make_url(postgres_url)
    proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    proxy_port = await proxy.start()
    try:
        endpoints = write_endpoints(
            tmp_path / "endpoints.yml",
            postgres_url=postgres_url,
            postgres_port=proxy_port,
            redis_url=redis_url,
            key_prefix=redis_key_prefix,
        )
        server = await launcher.start(endpoints)
        async with client_session() as session:
            before = await send(session, server.url, "kim", "/greet", tag_of(0, 0))
            assert before.status == 200 and before.reply, before

            await proxy.stop()  # the database is gone, with every pooled connection

            started = time.monotonic()
            lost = await send(session, server.url, "kim", "/mood_great", tag_of(0, 1))
            waited = time.monotonic() - started
            assert lost.status == 503, lost
            assert lost.headers.get("Content-Type", "").startswith("application/json"), lost
            assert int(lost.headers.get("Retry-After", "0")) >= 1, lost.headers
            # The user is told, briefly, in the channel's own message format.
            assert lost.reply == [{"recipient_id": "kim", "text": APOLOGY}], lost.reply
            assert len(APOLOGY) < 120
            assert not any(leak in str(lost.reply) for leak in LEAKS), lost.reply
            assert waited < 30, f"the apology took {waited:.1f} s"

            await proxy.start()  # back on the same address

            after = await send(session, server.url, "kim", "/goodbye", tag_of(0, 2))
            assert after.status == 200 and after.reply, after
        assert "unavailable" in server.log(), server.log_tail()
    finally:
        await proxy.stop()

    # The message that met the outage left nothing behind; the others are whole.
    stored = await read_store(postgres_url)
    turns = check_log("kim", stored["kim"])
    assert [turn.tag for turn in turns] == [tag_of(0, 0), tag_of(0, 2)]
    check_answers("kim", turns, [before, lost, after])
