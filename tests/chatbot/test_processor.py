"""One message end to end through the processor, on the restaurant bot (no NLU: /intent payloads),
with its real rasa-sdk validation action run in-process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Set
from dataclasses import replace

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.policy import Policy, Prediction
from chatbot.store.memory import InMemoryStore
from tests.helpers import DOMAINS, dialogue_model


@pytest.fixture
def agent() -> Agent:
    executor = InProcessExecutor(DOMAINS / "restaurant", "actions")
    return Agent(dialogue_model("restaurant"), action_executor=executor)


def texts(messages: list[dict]) -> list[str]:
    return [m["text"] for m in messages if m.get("text")]


async def events_of(agent: Agent, sender: str) -> list[dict]:
    return (await agent.store.load(sender, all_sessions=True)).events


async def test_first_message_starts_a_session(agent: Agent) -> None:
    await agent.handle_text("/greet", "s1")
    events = await events_of(agent, "s1")
    kinds = [(e["event"], e.get("name")) for e in events[:4]]
    assert kinds == [
        ("action", "action_session_start"),
        ("session_started", None),
        ("action", "action_listen"),
        ("user", None),
    ]
    assert events[-1] == {**events[-1], "event": "action", "name": "action_listen"}


async def test_happy_path_fills_the_form_and_validates(agent: Agent) -> None:
    sender = "happy"
    asked = texts(await agent.handle_text("/request_restaurant", sender))
    assert asked == ["What cuisine would you like?"]
    reply = await agent.handle_text('/inform{"cuisine": "Italian"}', sender)
    assert texts(reply)[0] in (
        "How many people are coming?",
        "For how many people should I book the table?",
    )
    reply = await agent.handle_text('/inform{"number": 4}', sender)
    assert texts(reply) == ["Would you like to sit outside?"]
    assert [b["payload"] for b in reply[0]["buttons"]] == ["/affirm", "/deny"]
    reply = await agent.handle_text("/affirm", sender)
    assert texts(reply)[0].startswith("Any additional preferences")
    reply = await agent.handle_text("a quiet table", sender)
    said = " ".join(texts(reply))
    assert "All done" in said and "italian" in said and "quiet table" in said
    conv = Conversation(sender, agent.domain, await events_of(agent, sender))
    assert conv.active_loop_name is None
    assert conv.slots["cuisine"] == "italian"  # normalised by validate_restaurant_form
    assert conv.slots["num_people"] == 4


async def test_validation_rejects_an_unknown_cuisine_and_asks_again(agent: Agent) -> None:
    await agent.handle_text("/request_restaurant", "v")
    reply = texts(await agent.handle_text('/inform{"cuisine": "martian"}', "v"))
    assert reply == [
        "Sorry, I don't know any restaurant with that cuisine. Please pick another one.",
        "What cuisine would you like?",
    ]


async def test_digression_inside_the_form_returns_to_it(agent: Agent) -> None:
    await agent.handle_text("/request_restaurant", "d")
    reply = texts(await agent.handle_text("/bot_challenge", "d"))
    assert reply == ["I am a bot: a restaurant booking assistant.", "What cuisine would you like?"]
    events = await events_of(agent, "d")
    assert any(
        e["event"] == "action_execution_rejected" and e["name"] == "restaurant_form" for e in events
    )


async def test_custom_action_failure_apologises_and_stores_no_half_action() -> None:
    agent = Agent(dialogue_model("restaurant"))  # no action endpoint configured
    # The form runs its validation action (validate_restaurant_form) as it starts, as Rasa's.
    reply = texts(await agent.handle_text("/request_restaurant", "f"))
    assert reply == ["Sorry, something went wrong on my side. Please try again in a moment."]
    events = await events_of(agent, "f")
    last_turn = events[max(i for i, e in enumerate(events) if e["event"] == "user") :]
    assert not any(e["event"] == "action" and e["name"] == "restaurant_form" for e in last_turn)
    assert last_turn[-1]["name"] == "action_listen"


async def test_expired_session_starts_a_new_one_and_carries_slots(agent: Agent) -> None:
    store = InMemoryStore()
    agent = Agent(agent.model, store=store, action_executor=agent.action_executor)
    await agent.handle_text("/request_restaurant", "old")
    await agent.handle_text('/inform{"cuisine": "thai"}', "old")
    stored = await store.load("old", all_sessions=True)
    # Age the conversation by two hours: rewrite it into a fresh store with old timestamps.
    aged = [{**e, "timestamp": e["timestamp"] - 7200} for e in stored.events]
    agent.store = store2 = InMemoryStore()
    agent.processor.store = store2
    await store2.append("old", aged, start_seq=0)
    await agent.handle_text("/greet", "old")
    events = (await store2.load("old", all_sessions=True)).events
    starts = [i for i, e in enumerate(events) if e.get("name") == "action_session_start"]
    assert len(starts) == 2
    carried = {e["name"]: e["value"] for e in events[starts[1] :] if e["event"] == "slot"}
    assert carried["cuisine"] == "thai"
    last = await store2.load("old")  # the last session only, by default
    assert last.events[0]["name"] == "action_session_start" and len(last.events) < len(events)


async def test_restart_clears_the_conversation(agent: Agent) -> None:
    await agent.handle_text("/request_restaurant", "r")
    await agent.handle_text('/inform{"cuisine": "thai"}', "r")
    await agent.handle_text("/restart", "r")
    conv = Conversation("r", agent.domain, await events_of(agent, "r"))
    assert conv.slots["cuisine"] is None
    kinds = [e.get("name") or e["event"] for e in conv.events[-5:]]
    assert kinds == [
        "action_restart",
        "restart",
        "action_session_start",
        "session_started",
        "action_listen",
    ]


class AlwaysGreet(Policy):
    name = "AlwaysGreet"
    priority = 1

    def predict(self, conversation: Conversation, excluded: Set[str] = frozenset()) -> Prediction:
        return Prediction("utter_greet", 1.0, self.name, self.priority)

    def export(self) -> tuple[dict, dict]:
        return {}, {}


async def test_at_most_ten_actions_per_message(agent: Agent) -> None:
    agent.model.policies, saved = [AlwaysGreet()], agent.model.policies
    try:
        agent.replace_model(agent.model)
        reply = await agent.handle_text("/greet", "loop")
    finally:
        agent.model.policies = saved
    assert len(reply) == 10
    events = await events_of(agent, "loop")
    assert events[-1]["name"] == "action_listen"


async def test_unknown_text_without_nlu_falls_back_and_listens(agent: Agent) -> None:
    # Rules and memoization only: nothing knows a message without an intent.
    exact = [p for p in agent.model.policies if p.name in ("RulePolicy", "MemoizationPolicy")]
    agent.replace_model(replace(agent.model, policies=exact))
    started = time.time()
    reply = texts(await agent.handle_text("qwertyuiop", "fb"))
    assert reply == ["Sorry, I didn't get that. Could you rephrase?"]
    events = await events_of(agent, "fb")
    assert [e["event"] for e in events[-3:]] == ["bot", "rewind", "action"]
    assert events[-1]["timestamp"] >= started


async def test_a_payload_naming_what_the_domain_lacks_is_warned_once(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's warning for a button or client payload the domain does not know (insurance-demo's
    `/make_a_payment` button): once per name, so a client cannot fill the log."""
    with caplog.at_level(logging.WARNING, logger="chatbot.agent"):
        for _ in range(2):
            await agent.handle_text("/ask_for_a_unicorn", "u1")
            await agent.handle_text('/greet{"planet_of_origin": "mars"}', "u1")
            await agent.handle_text('/inform{"cuisine": "thai"}', "u1")
    warned = [r.getMessage() for r in caplog.records if r.name == "chatbot.agent"]
    assert [w.split(",")[0] for w in warned] == [
        "a message names the intent 'ask_for_a_unicorn'",
        "a message names the entity 'planet_of_origin'",
    ]


async def test_a_message_is_parsed_while_it_waits_for_the_lock_and_logged_in_order(
    agent: Agent,
) -> None:
    original = agent.processor.parse
    second_parse_started = asyncio.Event()

    async def parse(text: str) -> dict:
        if text == "/greet":  # the first message's parse ends only once the second's has begun
            await asyncio.wait_for(second_parse_started.wait(), timeout=5)
        else:
            second_parse_started.set()
        return await original(text)

    agent.processor.parse = parse  # type: ignore[method-assign]
    first = asyncio.create_task(agent.handle_text("/greet", "queue"))
    await asyncio.sleep(0)  # the first message takes the lock
    second = asyncio.create_task(agent.handle_text("/thankyou", "queue"))
    await asyncio.gather(first, second)
    users = [e["text"] for e in await events_of(agent, "queue") if e["event"] == "user"]
    assert users == ["/greet", "/thankyou"]


async def test_a_turn_that_fails_before_its_parse_is_needed_leaves_no_parse_running(
    agent: Agent,
) -> None:
    finished: list[str] = []

    async def parse(text: str) -> dict:
        await asyncio.sleep(0.5)
        finished.append(text)
        return {}

    async def broken_load(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store broke")

    agent.processor.parse = parse  # type: ignore[method-assign]
    agent.processor._load = broken_load  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError, match="the store broke"):
        await agent.handle_text("hello", "broken")
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    await asyncio.sleep(0.6)
    assert finished == []  # cancelled, not left to finish in the background


async def test_debug_logging_traces_the_turn_as_rasas_debug_does(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG (``chatbot -v shell``) a turn says what the NLU read, each next action with its
    policy and confidence, what each action did, and the slots after it; at INFO none of it (the
    user's text stays out of a server's log)."""
    await agent.handle_text("/request_restaurant", "dbg")
    with caplog.at_level(logging.INFO, logger="chatbot"):
        await agent.handle_text('/inform{"cuisine": "thai"}', "info")
    assert not [r for r in caplog.records if r.name == "chatbot.processor"]

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="chatbot.processor"):
        await agent.handle_text('/inform{"cuisine": "Italian"}', "dbg")
    lines = [r.getMessage() for r in caplog.records if r.name == "chatbot.processor"]
    assert lines[0] == (
        'conversation dbg: user said \'/inform{"cuisine": "Italian"}\': intent inform (1.00), '
        "entities [cuisine='Italian']"
    )
    assert lines[1] == "conversation dbg: next action restaurant_form (RulePolicy, confidence 1.00)"
    form = next(line for line in lines if line.startswith("conversation dbg: restaurant_form"))
    assert "slot cuisine='italian'" in form  # validated by the form's action: lower case
    assert "slot requested_slot='num_people'" in form and "people" in form.split("bot ")[1]
    assert lines[-2].startswith("conversation dbg: next action action_listen (")
    assert lines[-1].startswith("conversation dbg: slots [cuisine='italian', ")
    assert "requested_slot='num_people'" in lines[-1]
