"""Several ``chatbot run`` processes on one PostgreSQL (or MySQL) and one Redis, checked in the
database.

Two servers share the conversations of many concurrent clients; a server is killed with SIGKILL
under load and restarted. Whatever happens, every conversation in the store is whole: seqs
without gaps, each user message answered once and stored once, with the very reply its client
got, each client's messages in the order it sent them, and never half a turn.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import aiohttp
import pytest

from tests.chatbot.store.mp_server import (  # noqa: F401 (fixtures)
    INTENTS,
    Sent,
    ServerLauncher,
    check_answers,
    check_log,
    client_and_n,
    client_session,
    launcher_fixture,
    moodbot_model_file_fixture,
    read_store,
    send,
    tag_of,
    write_endpoints,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

CONVERSATIONS = 50
CLIENTS_PER_CONVERSATION = 4
MESSAGES_PER_CLIENT = 5  # 20 messages a conversation, 1,000 in all
# HTTP requests in flight at once, over the 200 clients (the rest wait for a connection, as behind
# a proxy); the lock store copes with more (test_multiprocess_lock_connections.py), this bounds
# the load on a small machine.
MAX_IN_FLIGHT = 64
# All the traffic of the first test; it took 23 s on 2 cores shared with a load average of 8.
TRAFFIC_TIMEOUT = 300.0


@pytest.fixture(params=["postgresql", "mysql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of the test's own on PostgreSQL, then on MySQL."""
    name = "postgres_url" if request.param == "postgresql" else "mysql_url"
    return str(request.getfixturevalue(name))


async def test_two_servers_answer_concurrent_clients_once_each_in_order(
    launcher: ServerLauncher,
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> None:
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        postgres_url=database_url,
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
    )
    # Both start on an empty database at once: one of them creates the tables.
    servers = await asyncio.gather(launcher.start(endpoints), launcher.start(endpoints))

    async def client(session: aiohttp.ClientSession, conversation_id: str, k: int) -> list[Sent]:
        """One client's messages, each sent when the one before is answered; they alternate
        between the servers, and the 4 clients of a conversation start on different ones."""
        results = []
        for n in range(MESSAGES_PER_CLIENT):
            server = servers[(k + n) % len(servers)]
            text = INTENTS[(k + n) % len(INTENTS)]
            results.append(await send(session, server.url, conversation_id, text, tag_of(k, n)))
        return results

    ids = [f"user-{i:02d}" for i in range(CONVERSATIONS)]
    started = time.monotonic()
    async with client_session(limit=MAX_IN_FLIGHT) as session:
        per_client = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client(session, conversation_id, k)
                    for conversation_id in ids
                    for k in range(CLIENTS_PER_CONVERSATION)
                )
            ),
            TRAFFIC_TIMEOUT,
        )
    elapsed = time.monotonic() - started
    sent: dict[str, list[Sent]] = {conversation_id: [] for conversation_id in ids}
    for results in per_client:
        for result in results:
            sent[result.conversation_id].append(result)
    total = CONVERSATIONS * CLIENTS_PER_CONVERSATION * MESSAGES_PER_CLIENT
    print(f"{total} messages through 2 servers in {elapsed:.1f} s ({total / elapsed:.1f}/s)")

    failed = [(s.conversation_id, s.tag, s.status, s.reply) for r in per_client for s in r]
    failed = [f for f in failed if f[2] != 200]
    assert not failed, f"{len(failed)} messages not answered, e.g. {failed[:3]}"
    unanswered = [(s.conversation_id, s.tag) for r in per_client for s in r if not s.reply]
    assert not unanswered, f"empty replies: {unanswered[:5]}"

    stored = await read_store(database_url)
    assert sorted(stored) == ids
    interleaved = 0
    for conversation_id in ids:
        turns = check_log(conversation_id, stored[conversation_id])
        assert len(turns) == CLIENTS_PER_CONVERSATION * MESSAGES_PER_CLIENT, conversation_id
        check_answers(conversation_id, turns, sent[conversation_id])
        clients = [client_and_n(turn.tag)[0] for turn in turns]
        switches = sum(a != b for a, b in itertools.pairwise(clients))
        interleaved += switches > CLIENTS_PER_CONVERSATION - 1
    # The clients of a conversation did race each other (else the locks were never tested).
    print(
        f"{interleaved} of {CONVERSATIONS} conversations with their clients' messages interleaved"
    )
    assert interleaved >= CONVERSATIONS // 2


KILLED_CONVERSATIONS = 16
ANSWERED_BEFORE_KILL = 60


async def test_a_server_killed_under_load_loses_no_answered_message(
    launcher: ServerLauncher,
    postgres_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Path,
) -> None:
    # A short lock lifetime: the locks the killed server held run out 10 s after it died.
    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        postgres_url=postgres_url,
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
        lock_lifetime=10,
        wait_timeout=60,
    )
    server = await launcher.start(endpoints)
    ids = [f"user-{i:02d}" for i in range(KILLED_CONVERSATIONS)]
    sent: dict[str, list[Sent]] = {conversation_id: [] for conversation_id in ids}
    in_flight = 0

    async def client(session: aiohttp.ClientSession, conversation_id: str) -> None:
        """Messages back to back until the server stops answering."""
        nonlocal in_flight
        for n in range(10_000):
            text, tag = INTENTS[n % len(INTENTS)], tag_of(0, n)
            in_flight += 1
            try:
                result = await send(session, server.url, conversation_id, text, tag)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                result = Sent(conversation_id, tag, text, None, None)
            finally:
                in_flight -= 1
            sent[conversation_id].append(result)
            if not result.answered:
                return

    def answered() -> int:
        return sum(s.answered for results in sent.values() for s in results)

    async with client_session() as session:
        clients = asyncio.gather(*(client(session, conversation_id) for conversation_id in ids))
        give_up = time.monotonic() + 180
        while answered() < ANSWERED_BEFORE_KILL and time.monotonic() < give_up:
            if clients.done():
                break
            await asyncio.sleep(0.01)
        assert answered() >= ANSWERED_BEFORE_KILL, (
            f"only {answered()} messages answered before the kill:\n{server.log_tail()}"
        )
        assert in_flight > 0
        in_flight_at_kill = in_flight
        server.kill()
        await asyncio.wait_for(clients, 60)
    assert await server.wait_exit(30) is not None

    answered_before = answered()
    failures = [s for r in sent.values() for s in r if s.status not in (200, None)]
    assert not failures, f"messages refused before the kill: {failures[:3]}"
    print(f"killed with {in_flight_at_kill} messages in flight, {answered_before} answered")

    stored = await read_store(postgres_url)
    for conversation_id in ids:
        turns = check_log(conversation_id, stored.get(conversation_id, []))
        check_answers(conversation_id, turns, sent[conversation_id])

    # The same database again: every conversation goes on, after the dead server's locks ran out.
    restarted = await launcher.start(endpoints)
    async with client_session() as session:
        after = await asyncio.gather(
            *(
                send(
                    session,
                    restarted.url,
                    conversation_id,
                    "/greet",
                    tag_of(0, len(sent[conversation_id])),
                )
                for conversation_id in ids
            )
        )
    for result in after:
        assert result.status == 200 and result.reply, result
        sent[result.conversation_id].append(result)

    stored = await read_store(postgres_url)
    for conversation_id in ids:
        turns = check_log(conversation_id, stored[conversation_id])
        check_answers(conversation_id, turns, sent[conversation_id])
        assert turns[-1].tag == tag_of(0, len(sent[conversation_id]) - 1)
