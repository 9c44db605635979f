"""The processor's per-process conversation cache, checked against the store's next seq: a cached
conversation is the one a full load gives, and a write by anyone else is seen."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation.conversation import Conversation
from chatbot.errors import StoreUnavailable
from chatbot.processor import MessageProcessor
from chatbot.store import ConversationStore, InMemoryStore, SQLStore
from tests.helpers import DOMAINS, dialogue_model

from .conftest import StoreBackend

TURNS = [
    "/greet",
    "/request_restaurant",
    '/inform{"cuisine": "thai"}',
    '/inform{"number": "4"}',
    "/bot_challenge",
    "/affirm",
    "/deny",
    "/thankyou",
]


def agent_on(store: ConversationStore) -> Agent:
    executor = InProcessExecutor(DOMAINS / "restaurant", "actions")
    return Agent(dialogue_model("restaurant"), store=store, action_executor=executor)


@pytest.fixture
async def stores(backend: StoreBackend) -> AsyncIterator[tuple[ConversationStore, ...]]:
    """Two store objects on one database, as two server processes have (in memory: one)."""
    first = backend.new_store()
    second = backend.new_store() if backend.persistent else first
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def as_json(conversation: Conversation) -> dict[str, Any]:
    state = conversation.as_tracker()
    state["states"] = [sorted(map(repr, s)) for s in conversation.past_states()]
    result: dict[str, Any] = json.loads(json.dumps(state, default=repr))
    return result


async def full_load(processor: MessageProcessor, conversation_id: str) -> Conversation:
    stored = await processor.store.load(conversation_id)
    return Conversation(conversation_id, processor.domain, stored.events)


def cached(processor: MessageProcessor, conversation_id: str) -> Conversation:
    entry = processor.cache.take(conversation_id)
    assert entry is not None, f"{conversation_id} is not cached"
    processor.cache.put(conversation_id, entry.conversation, entry.next_seq)
    return entry.conversation


async def test_a_cached_conversation_is_the_one_a_full_load_gives(
    stores: tuple[ConversationStore, ...],
) -> None:
    agent = agent_on(stores[0])
    processor = agent.processor
    for n, text in enumerate(TURNS):
        await agent.handle_text(text, "ann")
        if n > 0:  # the first turn started a session: not cached (see below)
            assert as_json(cached(processor, "ann")) == as_json(await full_load(processor, "ann"))
    # The first turn loaded (and started a session, so the second loaded too); then hits.
    assert processor.cache.hits == len(TURNS) - 2
    assert processor.cache.misses == 2


async def test_answers_are_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    with_cache = agent_on(InMemoryStore())
    without = agent_on(InMemoryStore())
    without.processor.cache.size = 0
    with_cache.processor.rng, without.processor.rng = random.Random(7), random.Random(7)
    for text in TURNS:
        assert await with_cache.handle_text(text, "x") == await without.handle_text(text, "x")
    assert without.processor.cache.hits == 0 and with_cache.processor.cache.hits > 0


async def test_a_write_by_another_process_is_caught_up(
    stores: tuple[ConversationStore, ...], backend: StoreBackend
) -> None:
    """Turns that move between processes (a load balancer without sticky sessions): each
    process applies what the other appended since, reading those events only, and its
    conversation is the one a full load gives. (In memory: two processors on one store.)"""
    one, two = agent_on(stores[0]), agent_on(stores[1])
    await one.handle_text("/greet", "bo")
    await one.handle_text("/request_restaurant", "bo")
    assert "bo" in one.processor.cache

    await two.handle_text('/inform{"cuisine": "thai"}', "bo")  # the other process answers
    misses = one.processor.cache.misses
    full_loads = count_loads(stores[0])
    await one.handle_text('/inform{"number": "2"}', "bo")

    assert one.processor.cache.caught_up == 1
    assert one.processor.cache.misses == misses and full_loads() == 0  # no full load
    conversation = cached(one.processor, "bo")
    assert conversation.slots["cuisine"] == "thai" and conversation.slots["num_people"] == 2
    assert as_json(conversation) == as_json(await full_load(one.processor, "bo"))
    stored = await stores[0].load("bo", all_sessions=True)
    assert [e["event"] for e in stored.events].count("user") == 4
    # And back: the second process catches up on the first's turn as well.
    await two.handle_text("/affirm", "bo")
    assert two.processor.cache.caught_up == 1
    assert as_json(cached(two.processor, "bo")) == as_json(await full_load(two.processor, "bo"))


async def test_a_new_session_or_another_log_by_another_process_is_loaded_whole() -> None:
    store = InMemoryStore()
    one, two = agent_on(store), agent_on(store)
    for text in TURNS[:2]:
        await one.handle_text(text, "di")
    await two.handle_text("/session_start", "di")  # the other process starts a new session
    misses = one.processor.cache.misses
    await one.handle_text("/greet", "di")
    assert one.processor.cache.misses == misses + 1 and one.processor.cache.caught_up == 0
    assert as_json(cached(one.processor, "di")) == as_json(await full_load(one.processor, "di"))

    # The log replaced under the same id (a conversation that expired, then began anew) and
    # grown past where this process's copy ends: its last event is not the store's.
    for text in TURNS[:2]:
        await one.handle_text(text, "ed")
    del store._logs["ed"]
    fresh = agent_on(store)
    for text in TURNS[:5]:
        await fresh.handle_text(text, "ed")
    misses = one.processor.cache.misses
    await one.handle_text("/affirm", "ed")
    assert one.processor.cache.misses == misses + 1 and one.processor.cache.caught_up == 0
    assert as_json(cached(one.processor, "ed")) == as_json(await full_load(one.processor, "ed"))


def count_loads(store: ConversationStore) -> Callable[[], int]:
    """How many full loads ``store`` serves from now on (``load`` wrapped)."""
    calls = []
    load = store.load

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await load(*args, **kwargs)

    store.load = counted  # type: ignore[method-assign]
    return lambda: len(calls)


async def test_events_appended_through_the_api_are_seen() -> None:
    agent = agent_on(InMemoryStore())
    await agent.handle_text("/greet", "cy")
    await agent.handle_text("/request_restaurant", "cy")
    slot = {"event": "slot", "name": "cuisine", "value": "greek"}
    await agent.processor.append_events("cy", [slot], all_sessions=True)

    await agent.handle_text('/inform{"number": "3"}', "cy")

    conversation = cached(agent.processor, "cy")
    assert conversation.slots["cuisine"] == "greek"
    assert as_json(conversation) == as_json(await full_load(agent.processor, "cy"))


@pytest.mark.parametrize("text", ["/restart", "/session_start"])
async def test_restart_and_a_new_session_are_loaded_once_then_cached(text: str) -> None:
    agent = agent_on(InMemoryStore())
    processor = agent.processor
    for turn in TURNS[:3]:
        await agent.handle_text(turn, "di")
    await agent.handle_text(text, "di")
    # A turn that started a session is not cached: a load gives the new session only.
    assert "di" not in processor.cache
    await agent.handle_text("/greet", "di")
    await agent.handle_text("/request_restaurant", "di")
    conversation = cached(processor, "di")
    assert as_json(conversation) == as_json(await full_load(processor, "di"))
    assert conversation.slots["cuisine"] is None or text == "/session_start"


async def test_rewind_and_undo_in_a_turn(tmp_path: Path) -> None:
    agent = agent_on(SQLStore(f"sqlite:///{tmp_path / 'c.db'}"))
    processor = agent.processor
    try:
        for turn in TURNS[:4]:
            await agent.handle_text(turn, "ed")

        async def take_back(conversation: Conversation) -> None:
            conversation.extend([{"event": "rewind"}, {"event": "undo"}])

        await processor.update("ed", take_back, start_session=False)
        assert as_json(cached(processor, "ed")) == as_json(await full_load(processor, "ed"))
        await agent.handle_text('/inform{"number": "5"}', "ed")
        assert as_json(cached(processor, "ed")) == as_json(await full_load(processor, "ed"))
    finally:
        await agent.close()


class FailingAppend(InMemoryStore):
    """Its next ``append`` fails, as a database lost in the middle of a turn."""

    fail_next = False

    async def append(self, conversation_id: str, events: Any, *, start_seq: int) -> None:
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailable("gone")
        await super().append(conversation_id, events, start_seq=start_seq)


async def test_a_failed_turn_leaves_nothing_cached() -> None:
    store = FailingAppend()
    agent = agent_on(store)
    await agent.handle_text("/greet", "flo")
    await agent.handle_text("/request_restaurant", "flo")

    store.fail_next = True
    with pytest.raises(StoreUnavailable):
        await agent.handle_text('/inform{"cuisine": "thai"}', "flo")

    assert "flo" not in agent.processor.cache  # it held events the store does not have
    await agent.handle_text("/bot_challenge", "flo")
    conversation = cached(agent.processor, "flo")
    assert conversation.slots["cuisine"] is None
    assert as_json(conversation) == as_json(await full_load(agent.processor, "flo"))


async def test_the_cache_is_bounded_least_recently_used_out_first() -> None:
    agent = agent_on(InMemoryStore())
    agent.processor.cache.size = 2
    for name in ("a", "b", "c"):
        await agent.handle_text("/greet", name)
        await agent.handle_text("/bot_challenge", name)
    await agent.handle_text("/bot_challenge", "b")  # b is now the most recent
    await agent.handle_text("/greet", "d")
    await agent.handle_text("/bot_challenge", "d")
    assert len(agent.processor.cache) == 2
    assert "b" in agent.processor.cache and "d" in agent.processor.cache


async def test_the_cache_is_bounded_by_the_events_it_holds_too() -> None:
    """A few very long sessions took the memory of many short ones (6,000 turns: about 30 MB
    each, kept for the process's life): the cache holds at most so many events in all."""
    agent = agent_on(InMemoryStore())
    cache = agent.processor.cache

    async def held(name: str) -> int:
        return len((await agent.store.load(name)).events)

    for _ in range(3):  # a new session is cached from its second turn
        await agent.handle_text("/bot_challenge", "long")
    for _ in range(2):
        await agent.handle_text("/greet", "short")
    assert "long" in cache and "short" in cache
    assert cache.events == await held("long") + await held("short")
    turn = 4  # user, action, bot, action_listen
    cache.max_events = await held("long") + turn - 1
    await agent.handle_text("/bot_challenge", "long")  # longer now than all it may hold
    assert "long" not in cache and "short" in cache
    assert cache.events == await held("short")
    cache.max_events = await held("long") + turn + await held("short") - 1
    await agent.handle_text("/bot_challenge", "long")  # cached again: the short one goes
    assert "long" in cache and "short" not in cache
    assert cache.events == await held("long")
    # Answers do not depend on it: the short conversation replays from the store.
    assert [m["text"] for m in await agent.handle_text("/greet", "short")]


async def test_another_store_empties_the_cache() -> None:
    agent = agent_on(InMemoryStore())
    await agent.handle_text("/greet", "gus")
    await agent.handle_text("/bot_challenge", "gus")
    assert len(agent.processor.cache) == 1
    agent.processor.store = InMemoryStore()
    assert len(agent.processor.cache) == 0


async def test_an_expired_session_restarts_a_cached_conversation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = agent_on(InMemoryStore())
    for turn in TURNS[:3]:
        await agent.handle_text(turn, "hal")
    assert "hal" in agent.processor.cache
    later = time.time() + 2 * 3600  # past the restaurant bot's 60-minute sessions
    monkeypatch.setattr("chatbot.sessions.time.time", lambda: later)

    await agent.handle_text("/greet", "hal")

    events = (await agent.store.load("hal", all_sessions=True)).events
    starts = [i for i, e in enumerate(events) if e.get("name") == "action_session_start"]
    assert len(starts) == 2
    assert "hal" not in agent.processor.cache  # a new session: the next turn loads it
    await agent.handle_text("/bot_challenge", "hal")
    conversation = cached(agent.processor, "hal")
    assert conversation.slots["cuisine"] == "thai"  # carried over into the new session
    assert conversation.events[0]["name"] == "action_session_start"
