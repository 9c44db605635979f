"""End-to-end user steps (``- user: "..."`` without an intent) steer predictions at run time, when
the NLU gives the message an intent too (Rasa's e2ebot): the words and the intent each predict,
rules with words first (RulePolicy) and the more confident of the two (LSTM policy)."""

from __future__ import annotations

import numpy as np
import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import INTENT, TEXT
from chatbot.dialogue.lstm_policy import LSTMPolicy
from tests.helpers import RULES_ONLY, train_files

DOMAIN = """\
version: "3.1"
intents: [greet, inform]
responses:
  utter_greet:
  - text: "Hello!"
  utter_ok:
  - text: "Noted."
  utter_sushi:
  - text: "Sushi it is."
"""

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
- intent: inform
  examples: |
    - I want pizza
    - I can always go for pasta
    - pizza please
    - I would like some noodles
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: inform
  steps: [{intent: inform}, {action: utter_ok}]
- rule: sushi, in the user's own words
  steps: [{user: "I can always go for sushi"}, {action: utter_sushi}]
"""

SUSHI = "I can always go for sushi"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    config = (
        "language: en\npipeline:\n- name: WhitespaceTokenizer\n- name: DIETClassifier\n"
        "  epochs: 30\npolicies:\n- name: RulePolicy\n- name: TEDPolicy\n  epochs: 30\n"
    )
    # The same steps as stories too: the LSTM policy, as Rasa's TEDPolicy, learns nothing in a
    # project of rules alone.
    stories = RULES.replace("rules:", "stories:").replace("- rule:", "- story:")
    files = {
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        "data/rules.yml": RULES,
        "data/stories.yml": stories,
    }
    return train_files(tmp_path_factory.mktemp("e2e"), {**files, "config.yml": config})


async def test_a_rule_in_the_users_words_wins_over_the_intent(model: TrainedModel) -> None:
    agent = Agent(model)
    assert (await model.parse(SUSHI))["intent"]["name"] == "inform"  # the NLU has a say too
    answers = await agent.handle_text(SUSHI, "a")
    assert [m["text"] for m in answers] == ["Sushi it is."]
    # Other words of the same intent go by the intent.
    assert [m["text"] for m in await agent.handle_text("I want pizza", "a")] == ["Noted."]
    # A payload has no words: the intent decides.
    assert [m["text"] for m in await agent.handle_text("/inform", "a")] == ["Noted."]


def lstm(model: TrainedModel) -> LSTMPolicy:
    return next(p for p in model.policies if isinstance(p, LSTMPolicy))


def conversation_after(model: TrainedModel, text: str, intent: str) -> Conversation:
    conversation = Conversation("b", model.domain)
    conversation.append(ev.action("action_listen"))
    parse = {"intent": {"name": intent, "confidence": 1.0}, "entities": []}
    conversation.append(ev.user(text, parse))  # type: ignore[arg-type]
    return conversation


def test_the_lstm_policy_reads_the_words_in_place_of_the_intent(model: TrainedModel) -> None:
    policy = lstm(model)
    conversation = conversation_after(model, SUSHI, "inform")
    by_text = dict(policy._by_text(conversation, conversation.current_state()) or {})
    assert by_text[TEXT] == SUSHI and INTENT not in by_text
    payload = conversation_after(model, "/inform", "inform")
    assert policy._by_text(payload, payload.current_state()) is None
    external = conversation_after(model, "EXTERNAL: inform", "inform")  # a reminder, say
    assert policy._by_text(external, external.current_state()) is None


def test_the_lstm_policy_keeps_the_more_confident_reading(
    model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = lstm(model)
    conversation = conversation_after(model, SUSHI, "inform")
    labels = policy.featurizer.label_index
    sushi, ok = labels["utter_sushi"], labels["utter_ok"]

    def scores(best: int, margin: float) -> np.ndarray:
        logits = np.zeros(len(labels), np.float32)
        logits[best] = margin
        return logits

    def fake(conv: Conversation, current: object, by_text: object = None) -> tuple:
        return scores(ok, 2.0), scores(sushi, 9.0)  # the words are the more confident

    monkeypatch.setattr(policy, "_incremental", fake)
    probs = policy.probabilities(conversation)
    assert probs is not None and int(probs.argmax()) == sushi

    def unsure(conv: Conversation, current: object, by_text: object = None) -> tuple:
        return scores(ok, 9.0), scores(sushi, 2.0)

    monkeypatch.setattr(policy, "_incremental", unsure)
    probs = policy.probabilities(conversation)
    assert probs is not None and int(probs.argmax()) == ok


async def test_a_bot_turn_written_as_text_is_said(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Rasa's ActionEndToEndResponse: a story's `- bot: "..."` is an action that says its text.
    rules = (
        'version: "3.1"\nrules:\n- rule: morning\n  steps:\n  - intent: greet\n'
        '  - bot: "Morning to you, human!"\n'
    )
    files = {"domain.yml": DOMAIN, "data/rules.yml": rules, "config.yml": RULES_ONLY}
    model = train_files(tmp_path_factory.mktemp("bot_text"), files)
    assert "Morning to you, human!" in model.domain.action_texts
    answers = await Agent(model).handle_text("/greet", "a")
    assert answers == [{"recipient_id": "a", "text": "Morning to you, human!"}]
