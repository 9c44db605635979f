"""``chatbot run`` without its database: at start it says so in one line and exits; while running,
a user gets a short apology and the client a 503, until the database is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import make_url

from chatbot.server.errors import APOLOGY
from tests.chatbot.store.mp_server import (  # noqa: F401 (fixtures)
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


async def test_a_database_unreachable_at_start_is_one_line_and_a_failed_exit(
    launcher: ServerLauncher, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        postgres_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/conversations",
    )
    server = launcher.spawn(endpoints)

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
