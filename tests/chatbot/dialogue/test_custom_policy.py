"""A Rasa 3 project's custom policy (``- name: addons.policy.MyPolicy`` under ``policies:``) is
trained on the stories and rules as Rasa's trackers, kept in the model file with what it
persisted, loaded when the model is served, and competes with our policies turn by turn; a policy
that fails says nothing that turn, and a bad entry is an error naming config.yml's line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.dialogue.custom_policy import CustomPolicy
from chatbot.errors import ConfigError, TrainingError
from tests.helpers import code_package, json_printed_by, train_files

SOURCE = Path(__file__).parent / "custom_policy_source.py"
DOMAIN = (
    "intents: [greet, goodbye, explode, miscount]\nentities: [vip]\n"
    "slots:\n  vip:\n    type: bool\n    mappings:\n      - type: from_entity\n        entity: vip\n"
    "  seen:\n    type: bool\n    mappings: []\n"
    "responses:\n  utter_hi:\n    - text: Hi!\n  utter_bye:\n    - text: Bye! seen={seen}\n"
    "  utter_welcome_back:\n    - text: Welcome back!\n"
)
NLU = "".join(
    f"- intent: {intent}\n  examples: |\n    - {intent}\n    - {intent} please\n"
    for intent in ("greet", "goodbye", "explode", "miscount")
)
STORIES = (
    "stories:\n- story: hi\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
    "- story: hi twice\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
    "  - intent: greet\n  - action: utter_hi\n"
)
RULES = "rules:\n- rule: bye\n  steps:\n  - intent: goodbye\n  - action: utter_bye\n"


def files(
    package: str, policy: str = "policy.IntentActionPolicy", extra: str = ""
) -> dict[str, str]:
    return {
        "domain.yml": DOMAIN,
        "data/nlu.yml": "nlu:\n" + NLU,
        "data/stories.yml": STORIES,
        "data/rules.yml": RULES,
        "config.yml": (
            "pipeline:\n  - name: WhitespaceTokenizer\n  - name: DIETClassifier\n    epochs: 5\n"
            f"policies:\n  - name: {package}.{policy}\n    confidence: 0.8\n{extra}"
        ),
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("policy")
    yield root, code_package(root, "policies", {"policy": SOURCE.read_text()})


@pytest.fixture(scope="module")
def model(project: tuple[Path, str]) -> TrainedModel:
    root, package = project
    return train_files(root, files(package))


def custom_of(model: TrainedModel) -> CustomPolicy:
    (policy,) = [p for p in model.policies if isinstance(p, CustomPolicy)]
    return policy


def test_it_trains_on_stories_and_rules_as_trackers(model: TrainedModel) -> None:
    policy = custom_of(model)
    lookup = policy.instance.lookup
    assert lookup["__trackers__"] == [3, 1]  # two stories and one rule (ML_AND_RULE_DATA)
    assert (lookup["greet"], lookup["goodbye"]) == ("utter_hi", "utter_bye")
    assert (policy.name, policy.priority) == ("IntentActionPolicy", 2)  # its default priority


async def test_it_answers_turn_by_turn(model: TrainedModel) -> None:
    agent = Agent(model)
    assert [m["text"] for m in await agent.handle_text("/greet", "u1")] == ["Hi!"]
    assert [m["text"] for m in await agent.handle_text("/goodbye", "u1")] == ["Bye! seen=True"]
    # It reads the tracker's slots: a VIP is welcomed back.
    answer = await agent.handle_text('/greet{"vip": true}', "u2")
    assert [m["text"] for m in answer] == ["Welcome back!"]
    events = (await agent.store.load("u1")).events
    bye = next(e for e in events if e["event"] == "action" and e["name"] == "utter_bye")
    assert (bye["policy"], bye["confidence"]) == ("IntentActionPolicy", 0.8)
    await agent.close()


async def test_a_failing_policy_says_nothing_that_turn(
    model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(model)
    with caplog.at_level(logging.ERROR, logger="chatbot.dialogue.custom_policy"):
        assert await agent.handle_text("/explode", "u3") == []
        assert await agent.handle_text("/miscount", "u3") == []
        assert await agent.handle_text("/explode", "u3") == []
        # and the conversation goes on
        assert [m["text"] for m in await agent.handle_text("/greet", "u3")] == ["Hi!"]
    errors = [r for r in caplog.records if "IntentActionPolicy" in r.getMessage()]
    assert len(errors) == 3
    assert "the policy exploded" in errors[0].getMessage() and errors[0].exc_info
    assert "probabilities for the domain's" in errors[1].getMessage()
    assert not errors[2].exc_info  # one traceback
    await agent.close()


async def test_its_events_are_logged_before_its_action(
    model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa's processor applies a prediction's events: before the action, which sees them."""
    agent = Agent(model)
    # the action ran with the policy's event applied: the response reads the slot it set
    assert [m["text"] for m in await agent.handle_text("/goodbye", "u4")] == ["Bye! seen=True"]
    events = (await agent.store.load("u4")).events
    kinds = [(e["event"], e.get("name"), e.get("value")) for e in events[-5:]]
    assert kinds == [
        ("user", None, None),
        ("slot", "seen", True),  # the policy's SlotSet, before its action
        ("action", "utter_bye", None),
        ("bot", None, None),
        ("action", "action_listen", None),
    ]
    with caplog.at_level(logging.ERROR, logger="chatbot.dialogue.custom_policy"):
        answer = await agent.handle_text('/goodbye{"vip": true}', "u5")
    assert [m["text"] for m in answer] == ["Bye! seen=None"]  # the action stands without them
    assert "its events are not valid" in caplog.text and "bogus" in caplog.text
    assert not [e for e in (await agent.store.load("u5")).events if e.get("name") == "seen"]
    await agent.close()


def test_a_prediction_carries_its_events_and_respects_exclusions(model: TrainedModel) -> None:
    from chatbot.conversation import events as ev
    from chatbot.conversation.conversation import Conversation

    conversation = Conversation("u6", model.domain)
    conversation.extend(
        [
            ev.action("action_listen"),
            ev.user("bye", {"intent": {"name": "goodbye", "confidence": 1.0}, "entities": []}),
        ]
    )
    predicted = custom_of(model).predict(conversation)
    assert predicted is not None and predicted.action == "utter_bye"
    assert [(e["event"], e["name"], e["value"]) for e in predicted.events] == [
        ("slot", "seen", True)
    ]
    assert conversation.slots["seen"] is None  # predicting applies nothing
    assert custom_of(model).predict(conversation, excluded={"utter_bye"}) is None


def test_it_goes_through_the_model_file(model: TrainedModel, tmp_path: Path) -> None:
    """A fresh process in another folder serves it: the class comes from the project's folder,
    its stored lookup from the model file."""
    path = tmp_path / "model.chatbot"
    model.to_file(path)
    script = (
        "import asyncio, json\n"
        "from pathlib import Path\n"
        "from chatbot.agent import Agent\n"
        f"agent = Agent.load(Path({str(path)!r}))\n"
        "async def main():\n"
        "    said = [m['text'] for t in ('/greet', '/goodbye') "
        "for m in await agent.handle_text(t, 'p')]\n"
        "    await agent.close()\n"
        "    return said\n"
        "print(json.dumps(asyncio.run(main())))\n"
    )
    said = json_printed_by(script, tmp_path)
    assert said == ["Hi!", "Bye! seen=True"]


@pytest.mark.parametrize(
    ("policy", "module", "expected"),
    [
        ("missing.P", None, "no module '{p}.missing'"),
        ("plain.P", "class P:\n    pass\n", "is not a custom graph component"),
        (
            "noprediction.P",
            "from rasa.engine.graph import GraphComponent\nclass P(GraphComponent):\n    pass\n",
            "has no predict_action_probabilities",
        ),
    ],
)
def test_a_bad_policy_is_a_config_error_naming_its_line(
    tmp_path: Path, policy: str, module: str | None, expected: str
) -> None:
    modules = {policy.split(".")[0]: module} if module is not None else {}
    package = code_package(tmp_path, "badpolicy", modules)
    with pytest.raises(ConfigError) as raised:
        train_files(tmp_path, files(package, policy))
    assert str(raised.value).startswith(f"{tmp_path / 'config.yml'}:6: custom policy ")
    assert expected.format(p=package) in str(raised.value)


def test_a_policy_failing_to_train_is_a_training_error(tmp_path: Path) -> None:
    package = code_package(
        tmp_path,
        "failpolicy",
        {
            "p": (
                "from rasa.core.policies.policy import Policy\n"
                "class P(Policy):\n"
                "    def train(self, trackers, domain, **kwargs):\n"
                "        raise ValueError('no trackers I like')\n"
                "    def predict_action_probabilities(self, tracker, domain, **kwargs):\n"
                "        return self._prediction(self._default_predictions(domain))\n"
            )
        },
    )
    with pytest.raises(TrainingError, match=r"config.yml:6: custom policy .*train\(\) failed"):
        train_files(tmp_path, files(package, "p.P"))


def test_editing_a_policys_code_trains_the_policies_again(tmp_path: Path) -> None:
    from tests.helpers import project_files
    from training.reuse import part_fingerprints

    package = code_package(tmp_path, "editedpolicy", {"policy": SOURCE.read_text()})
    source = tmp_path / package / "policy.py"
    project = project_files(tmp_path, files(package))
    first = part_fingerprints(project, seed=42, augmentation=None)
    assert part_fingerprints(project, seed=42, augmentation=None) == first
    source.write_text(source.read_text() + "\n# a better lookup\n")
    again = part_fingerprints(project, seed=42, augmentation=None)
    assert again["core"] != first["core"]
    assert again["nlu"] == first["nlu"]


def test_the_tracker_and_domain_read_as_rasas(model: TrainedModel) -> None:
    from chatbot.conversation import events as ev
    from chatbot.conversation.conversation import Conversation
    from chatbot.rasa_compat.core import (
        ActionExecuted,
        BotUttered,
        DialogueStateTracker,
        Domain,
        SlotSet,
        UserUttered,
    )

    parse = {
        "intent": {"name": "nlu_fallback", "confidence": 0.4},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.4},
            {"name": "goodbye", "confidence": 0.3},
        ],
        "entities": [{"entity": "vip", "value": True, "start": 0, "end": 3}],
    }
    conversation = Conversation("t1", model.domain)
    conversation.extend(
        [
            ev.action("action_listen"),
            ev.user("hey", {"intent": {"name": "greet", "confidence": 1.0}, "entities": []}),
            ev.action("utter_hi"),
            ev.bot("Hi!"),
            ev.action("action_listen"),
            ev.user("vip bye?", parse),
            ev.slot("vip", True),
        ]
    )
    tracker = DialogueStateTracker(conversation)
    assert tracker.sender_id == "t1"
    assert [type(e).__name__ for e in tracker.events][-3:] == [
        "ActionExecuted",
        "UserUttered",
        "SlotSet",
    ]
    assert tracker.events[-1] == SlotSet("vip", True)
    assert tracker.get_slot("vip") is True and tracker.get_slot("nothing") is None
    assert tracker.current_slot_values()["seen"] is None
    assert tracker.latest_message.text == "vip bye?"
    assert tracker.get_intent_of_latest_message() == "goodbye"  # past the fallback
    assert tracker.get_intent_of_latest_message(skip_fallback_intent=False) == "nlu_fallback"
    assert list(tracker.get_latest_entity_values("vip")) == [True]
    assert tracker.latest_action_name == "action_listen"
    latest_bot = tracker.latest_bot_utterance
    assert isinstance(latest_bot, BotUttered) and latest_bot.text == "Hi!"
    last_action = tracker.get_last_event_for(ActionExecuted, ["action_listen"])
    assert isinstance(last_action, ActionExecuted) and last_action.action_name == "utter_hi"
    assert isinstance(tracker.get_last_event_for(UserUttered, skip=1), UserUttered)
    assert tracker.active_loop_name is None
    domain = Domain(model.domain)
    assert domain.action_names_or_texts[domain.index_for_action("utter_bye")] == "utter_bye"
    assert domain.num_actions == len(model.domain.action_names)
    with pytest.raises(ValueError, match="not an action"):
        domain.index_for_action("utter_nothing")


def test_past_states_are_rasas_states(model: TrainedModel) -> None:
    """``tracker.past_states(domain)``: the state before each action, then the current one, in
    Rasa's sub-states (a memoizing policy compares them), slots as their ``as_feature()``."""
    from chatbot.conversation import events as ev
    from chatbot.conversation.conversation import Conversation
    from chatbot.rasa_compat.core import DialogueStateTracker, Domain

    conversation = Conversation("t2", model.domain)
    conversation.extend(
        [
            ev.action("action_listen"),
            ev.user(
                "vip hi",
                {
                    "intent": {"name": "greet", "confidence": 1.0},
                    "entities": [{"entity": "vip", "value": True, "start": 0, "end": 3}],
                },
            ),
            ev.slot("vip", True),
            ev.slot("seen", False),
            ev.action("utter_hi"),
        ]
    )
    states = DialogueStateTracker(conversation).past_states(Domain(model.domain))
    slots = {"vip": (1.0, 1.0), "seen": (1.0, 0.0)}
    user = {"intent": "greet", "entities": ("vip",)}
    assert states == [
        {},
        {"user": user, "prev_action": {"action_name": "action_listen"}, "slots": slots},
        {"user": user, "prev_action": {"action_name": "utter_hi"}, "slots": slots},
    ]


def test_a_policy_needing_a_missing_package_is_a_config_error(tmp_path: Path) -> None:
    from tests.helpers import project_files
    from training.train import check_config

    package = code_package(
        tmp_path,
        "needy",
        {
            "p": "from rasa.core.policies.policy import Policy\n"
            "class P(Policy):\n"
            "    @staticmethod\n    def required_packages():\n        return ['nowhere_pkg_y']\n"
        },
    )
    with pytest.raises(ConfigError, match=r"config.yml:6: custom policy .*'nowhere_pkg_y'"):
        check_config(project_files(tmp_path, files(package, "p.P")))


def test_each_slot_type_reads_as_rasas_numbers() -> None:
    from chatbot.project.domain_reader import domain_from_dict
    from chatbot.rasa_compat.core import rasa_state

    domain = domain_from_dict(
        {
            "slots": {
                "size": {"type": "categorical", "values": ["S", "L"], "mappings": []},
                "price": {"type": "float", "mappings": []},
                "note": {"type": "text", "mappings": []},
            },
            "e2e_actions": ["Hello there!"],
        }
    )
    state = (
        ("prev_action", "Hello there!"),
        ("slot:note", True),
        ("slot:price", 0.25),
        ("slot:size", "l"),
        ("text", "hi"),
    )
    assert rasa_state(state, domain) == {
        "user": {"text": "hi"},
        "prev_action": {"action_text": "Hello there!"},
        "slots": {"note": (1.0,), "price": (1.0, 0.25), "size": (0.0, 1.0, 0.0)},
    }
    other = rasa_state((("slot:size", "__other__"), ("prev_action", "utter_x")), domain)
    assert other == {"prev_action": {"action_name": "utter_x"}, "slots": {"size": (0.0, 0.0, 1.0)}}
