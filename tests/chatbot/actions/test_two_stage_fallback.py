"""Rasa's two-stage fallback as a loop: affirm, rephrase, affirm again, give up; a clear answer
takes the unclear message's place in the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.actions.builtin import _intent_to_affirm
from chatbot.agent import Agent
from chatbot.conversation.conversation import Conversation
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """\
version: "3.1"
intents: [greet, goodbye]
responses:
  utter_greet:
  - text: "Hello!"
  utter_goodbye:
  - text: "Bye!"
  utter_ask_rephrase:
  - text: "Sorry, I'm not sure I understand. Could you rephrase it?"
  utter_default:
  - text: "Sorry, I couldn't understand that. Could you rephrase?"
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: goodbye
  steps: [{intent: goodbye}, {action: utter_goodbye}]
- rule: Implementation of the Two-Stage-Fallback
  steps:
  - intent: nlu_fallback
  - action: action_two_stage_fallback
  - active_loop: action_two_stage_fallback
"""

AFFIRM = "Did you mean 'that'?"  # a payload has no ranking to take the intent from
REPHRASE = "Sorry, I'm not sure I understand. Could you rephrase it?"
GIVE_UP = "Sorry, I couldn't understand that. Could you rephrase?"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> object:
    files = {"domain.yml": DOMAIN, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
    return train_files(tmp_path_factory.mktemp("fallback"), files)


async def talk(agent: Agent, sender: str, *texts: str) -> list[list[str]]:
    return [[m.get("text", "") for m in await agent.handle_text(text, sender)] for text in texts]


async def state(agent: Agent, sender: str) -> Conversation:
    return Conversation(sender, agent.domain, (await agent.store.load(sender)).events)


def applied_user_texts(conversation: Conversation) -> list[str]:
    return [e["text"] for e in conversation.applied_events() if e["event"] == "user"]


async def test_affirmed_the_conversation_goes_on_as_if_said_so(model: object) -> None:
    agent = Agent(model)  # type: ignore[arg-type]
    answers = await talk(agent, "a", "/nlu_fallback", "/greet", "/goodbye")
    assert answers == [[AFFIRM], ["Hello!"], ["Bye!"]]
    conversation = await state(agent, "a")
    assert conversation.active_loop_name is None
    assert applied_user_texts(conversation) == ["/greet", "/goodbye"]  # the unclear one is gone
    asked = next(e for e in conversation.events if e["event"] == "bot")
    assert [b["payload"] for b in asked["data"]["buttons"]] == ["/that", "/out_of_scope"]


async def test_denied_then_rephrased(model: object) -> None:
    agent = Agent(model)  # type: ignore[arg-type]
    answers = await talk(agent, "b", "/nlu_fallback", "/out_of_scope", "/greet")
    assert answers == [[AFFIRM], [REPHRASE], ["Hello!"]]
    conversation = await state(agent, "b")
    assert conversation.active_loop_name is None
    assert applied_user_texts(conversation) == ["/greet"]


async def test_an_unclear_rephrasing_is_affirmed_once_more_and_a_second_no_gives_up(
    model: object,
) -> None:
    agent = Agent(model)  # type: ignore[arg-type]
    answers = await talk(
        agent, "c", "/nlu_fallback", "/out_of_scope", "/nlu_fallback", "/out_of_scope", "/greet"
    )
    assert answers == [[AFFIRM], [REPHRASE], [AFFIRM], [GIVE_UP], ["Hello!"]]
    conversation = await state(agent, "c")
    assert conversation.active_loop_name is None
    assert applied_user_texts(conversation) == ["/greet"]


async def test_an_unclear_answer_to_the_affirmation_gives_up(model: object) -> None:
    agent = Agent(model)  # type: ignore[arg-type]
    answers = await talk(agent, "d", "/nlu_fallback", "/nlu_fallback", "/goodbye")
    assert answers == [[AFFIRM], [GIVE_UP], ["Bye!"]]
    assert (await state(agent, "d")).active_loop_name is None


def test_the_intent_to_affirm_is_the_best_one_under_the_fallback() -> None:
    parse_data = {
        "intent": {"name": "nlu_fallback", "confidence": 0.3},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.3},
            {"name": "greet", "confidence": 0.25},
            {"name": "goodbye", "confidence": 0.2},
        ],
    }
    assert _intent_to_affirm(parse_data) == "greet"
    assert _intent_to_affirm({"intent": {"name": "goodbye", "confidence": 0.9}}) == "goodbye"
    assert _intent_to_affirm({"intent": {"name": "nlu_fallback"}}) is None


async def test_without_their_responses_the_default_actions_say_nothing(tmp_path: Path) -> None:
    """As Rasa's (silent_fail): no English words of their own in a bot that has none."""
    domain = DOMAIN.split("  utter_ask_rephrase:")[0]
    files = {"domain.yml": domain, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
    agent = Agent(train_files(tmp_path, files))
    said = await talk(
        agent, "quiet", "/nlu_fallback", "/out_of_scope", "/nlu_fallback", "/out_of_scope", "/greet"
    )
    assert said == [[AFFIRM], [], [AFFIRM], [], ["Hello!"]]
