"""``chatbot interactive``: a conversation confirmed and corrected step by step becomes stories
and NLU examples in a new file of the project's data/ that the project reads back."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent
from chatbot.interactive import NEW_INTENT, NEW_RESPONSE, InteractiveSession, _example
from chatbot.nlu.duckling import NAME as DUCKLING
from chatbot.project.loader import load_project
from chatbot.project.nlu_writer import annotated_text
from chatbot.store import SQLStore
from tests.helpers import DOMAINS, RULES_ONLY, dialogue_model, train_files
from tests.test_cli import chatbot

FILES = {
    "domain.yml": (
        "intents: [greet, inform, goodbye]\n"
        "entities: [cuisine]\n"
        "slots:\n  cuisine:\n    type: text\n    mappings:\n"
        "      - type: from_entity\n        entity: cuisine\n"
        "responses:\n"
        "  utter_greet:\n    - text: Hello!\n"
        "  utter_ok:\n    - text: OK, {cuisine} food.\n"
        "  utter_goodbye:\n    - text: Bye.\n"
    ),
    "data/rules.yml": (
        "rules:\n"
        "- rule: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
        "- rule: inform\n  steps:\n  - intent: inform\n  - action: utter_ok\n"
    ),
    "config.yml": RULES_ONLY,
}


@pytest.fixture
def bot(tmp_path: Path) -> Path:
    return tmp_path / "bot"


class Script:
    """The answers typed, in order; the prompts and what was printed, kept."""

    def __init__(self, answers: list[str]) -> None:
        self.answers: Iterator[str] = iter(answers)
        self.prompts: list[str] = []
        self.printed: list[str] = []

    async def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self.answers)
        except StopIteration:
            raise EOFError from None

    def say(self, text: str) -> None:
        self.printed.append(text)


async def run(bot: Path, answers: list[str]) -> tuple[Script, InteractiveSession]:
    model = train_files(bot, FILES)  # no NLU examples: every intent is asked for
    agent = Agent(model)
    script = Script(answers)
    session = InteractiveSession(agent, bot / "data", script.ask, script.say)
    try:
        await session.run()
    finally:
        await agent.close()
    return script, session


def exported(session: InteractiveSession) -> dict[str, Any]:
    assert session.exported is not None
    data = yaml.safe_load(session.exported.read_text())
    assert isinstance(data, dict)
    return data


HELLO = ["hi", "greet", "y", "y", "y"]  # intent chosen, no entities, utter_greet, listen


async def test_a_corrected_conversation_becomes_stories_and_examples(bot: Path) -> None:
    script, session = await run(
        bot,
        [
            *HELLO,
            "some thai food",
            "inform",
            "n",  # "No entities ...: right?"
            "some [thai](cuisine) food",
            "y",  # utter_ok
            "y",  # action_listen
            "/stop",
            "y",  # export
        ],
    )
    assert "  bot: Hello!" in script.printed and "  bot: OK, thai food." in script.printed
    data = exported(session)
    assert data["nlu"] == [
        {"intent": "greet", "examples": "- hi\n"},
        {"intent": "inform", "examples": "- some [thai](cuisine) food\n"},
    ]
    (story,) = data["stories"]
    assert story["steps"] == [
        {"intent": "greet"},
        {"action": "utter_greet"},
        {"intent": "inform", "entities": [{"cuisine": "thai"}]},
        {"slot_was_set": [{"cuisine": "thai"}]},
        {"action": "utter_ok"},
    ]
    # The project reads the new file with its own data.
    project = load_project(bot)
    assert {(e.text, e.intent) for e in project.nlu.examples} == {
        ("hi", "greet"),
        ("some thai food", "inform"),
    }
    assert any(s.name == story["story"] for s in project.stories)


async def test_a_wrong_action_is_replaced_by_the_one_chosen(bot: Path) -> None:
    script, session = await run(
        bot,
        # After the correction no rule applies (the fallback is offered): listen instead.
        ["hi", "greet", "y", "n", "utter_goodbye", "n", "action_listen", "/stop", "y"],
    )
    assert "  bot: Bye." in script.printed and "  bot: Hello!" not in script.printed
    assert "Which action should the bot run?" in script.printed
    # The actions are offered best first: the rule's choice leads.
    offered = script.printed[script.printed.index("Which action should the bot run?") + 1]
    assert offered == "  1: utter_greet"
    steps = exported(session)["stories"][0]["steps"]
    assert steps == [{"intent": "greet"}, {"action": "utter_goodbye"}]


async def test_undo_takes_back_the_last_message(bot: Path) -> None:
    _, session = await run(
        bot,
        [
            *HELLO,
            "thai please",
            "inform",
            "some [thai](cuisine) food",  # not the message: asked again
            "[thai](cuisine) please",
            "y",
            "y",
            "bye",
            "u",  # at the intent question: the last message ("thai please") is undone
            "bye",
            "goodbye",
            "y",  # no entities
            "n",
            "utter_goodbye",
            "n",
            "action_listen",
            "/stop",
            "y",
        ],
    )
    data = exported(session)
    assert [e["intent"] for e in data["nlu"]] == ["greet", "goodbye"]
    assert data["stories"][0]["steps"] == [
        {"intent": "greet"},
        {"action": "utter_greet"},
        {"intent": "goodbye"},
        {"action": "utter_goodbye"},
    ]


async def test_restart_keeps_the_story_so_far(bot: Path) -> None:
    _, session = await run(bot, [*HELLO, "bye", "r", *HELLO, "/stop", "y"])
    stories = exported(session)["stories"]
    assert [s["steps"] for s in stories] == [
        [{"intent": "greet"}, {"action": "utter_greet"}],
        [{"intent": "greet"}, {"action": "utter_greet"}],
    ]
    assert len({s["story"] for s in stories}) == 2


async def test_markup_mistakes_are_said_and_asked_again(bot: Path) -> None:
    script, session = await run(
        bot,
        [
            "thai food",
            "inform",
            "n",
            "[thai](cuisine food",  # broken markup
            "[thai](colour) food",  # not an entity of the domain
            "[thai](cuisine) food",
            "y",
            "y",
        ],
    )
    said = "\n".join(script.printed)
    assert "malformed entity annotation" in said
    assert "Not entities of the domain: colour" in said
    # Input ended: what was confirmed is exported.
    assert exported(session)["nlu"] == [
        {"intent": "inform", "examples": "- [thai](cuisine) food\n"}
    ]


async def test_export_at_a_question_then_goes_on(bot: Path) -> None:
    script, session = await run(bot, [*HELLO, "/greet", "e", "y", "y", "q", "n"])
    assert any(p.startswith("Is the intent 'greet' (1.00)") for p in script.prompts)
    assert script.printed.count("  bot: Hello!") == 2
    printed = "\n".join(script.printed)
    assert "Exported 1 stories and 1 NLU examples" in printed
    # Exported before the payload was logged; quitting, the export was declined: the file is
    # the first export's.
    data = exported(session)
    assert data["stories"][0]["steps"] == [{"intent": "greet"}, {"action": "utter_greet"}]
    assert [e["intent"] for e in data["nlu"]] == ["greet"]
    assert printed.count("Exported") == 1


def test_the_command_trains_a_project_without_a_model(bot: Path) -> None:
    for name, text in FILES.items():
        (bot / name).parent.mkdir(parents=True, exist_ok=True)
        (bot / name).write_text(text)
    # As Rasa's, the conversation is kept in endpoints.yml's tracker store.
    (bot / "endpoints.yml").write_text("tracker_store:\n  type: sql\n  db: kept.db\n")
    result = chatbot(
        "interactive",
        "--project",
        str(bot),
        "--skip-visualization",  # Rasa's flag, accepted
        "--conversation-id",
        "ann",
        stdin="\n".join([*HELLO, "/stop", "y"]) + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "No trained model: training the project first" in result.stdout
    assert "bot: Hello!" in result.stdout
    (written,) = (bot / "data").glob("interactive_*.yml")
    assert yaml.safe_load(written.read_text())["nlu"] == [{"intent": "greet", "examples": "- hi\n"}]
    assert list((bot / "models").glob("*.model"))

    async def stored() -> list[str]:
        async with SQLStore(f"sqlite:///{bot / 'kept.db'}") as store:
            events = (await store.load("ann")).events
        return [e["text"] for e in events if e["event"] == "user"]

    assert asyncio.run(stored()) == ["hi"]


def test_an_example_keeps_the_nlu_models_entities_not_duckling_ones() -> None:
    parse = {
        "intent": {"name": "inform"},
        "entities": [
            {"entity": "cuisine", "start": 0, "end": 4, "value": "thai"},
            {"entity": "number", "start": 9, "end": 10, "value": 2, "extractor": DUCKLING},
            {"entity": "cuisine", "value": "thai"},  # no place in the text (a payload's)
        ],
    }
    example = _example("thai for 2", parse)
    assert annotated_text(example) == "[thai](cuisine) for 2"


async def test_a_form_and_its_validation_action_run_as_served(tmp_path: Path) -> None:
    """The restaurant bot's form with its rasa-sdk validation action in-process: the form asks,
    rejects a turn that fills nothing (said), and the story shows the loop."""
    agent = Agent(
        dialogue_model("restaurant"),
        action_executor=InProcessExecutor(DOMAINS / "restaurant", "actions"),
    )
    script = Script(["/request_restaurant", "y", "y", "y", "/affirm", "y", "y", "y"])
    session = InteractiveSession(agent, tmp_path / "data", script.ask, script.say)
    try:
        await session.run()
    finally:
        await agent.close()
    printed = "\n".join(script.printed)
    assert printed.count("bot: What cuisine would you like?") == 2  # asked, and again
    assert "(restaurant_form rejected the turn: the policies predict again)" in printed
    steps = exported(session)["stories"][0]["steps"]
    assert steps[:3] == [
        {"intent": "request_restaurant"},
        {"action": "restaurant_form"},
        {"active_loop": "restaurant_form"},
    ]
    assert {"intent": "affirm"} in steps


BLOCK_DOMAIN = (
    "# The bot's domain.\n"
    "intents:\n"
    "  - greet  # hello and the like\n"
    "  - inform:\n"
    "      use_entities: [cuisine]\n"
    "  - goodbye\n"
    "\n"
    "entities: [cuisine]\n" + FILES["domain.yml"].split("entities: [cuisine]\n", 1)[1]
)
NEW_WEATHER = [
    "how is the weather",
    NEW_INTENT,
    "greet",  # taken: asked again
    "ask weather",  # not a name: asked again
    "ask_weather",
    "y",  # no entities
    "n",
    NEW_RESPONSE,
    "weather_reply",  # not utter_...: asked again
    "utter_weather",
    "It is sunny.",
    "n",
    "action_listen",
    "/stop",
    "y",  # export
]


async def run_files(
    bot: Path, files: dict[str, str], answers: list[str]
) -> tuple[Script, InteractiveSession]:
    model = train_files(bot, files)
    agent = Agent(model)
    script = Script(answers)
    domain = bot / "domain" if (bot / "domain").is_dir() else bot / "domain.yml"
    session = InteractiveSession(agent, bot / "data", script.ask, script.say, domain_path=domain)
    try:
        await session.run()
    finally:
        await agent.close()
    return script, session


async def test_a_new_intent_and_response_are_made_in_the_session_and_exported(
    bot: Path,
) -> None:
    files = {**FILES, "domain.yml": BLOCK_DOMAIN}
    script, session = await run_files(bot, files, [*NEW_WEATHER, "y"])  # y: add to domain.yml
    printed = "\n".join(script.printed)
    assert "greet is in the domain already" in printed and "A name must" in printed
    assert "A name must start with utter_" in printed
    assert "  bot: It is sunny." in script.printed
    data = exported(session)
    assert data["nlu"] == [{"intent": "ask_weather", "examples": "- how is the weather\n"}]
    assert data["stories"][0]["steps"] == [{"intent": "ask_weather"}, {"action": "utter_weather"}]
    assert data["responses"] == {"utter_weather": [{"text": "It is sunny."}]}
    # domain.yml: the intent added to its list, every other line as it was
    domain = (bot / "domain.yml").read_text()
    assert domain == BLOCK_DOMAIN.replace("  - goodbye\n", "  - goodbye\n  - ask_weather\n")
    # The project reads all of it, and a bot trained on it answers the new intent.
    project = load_project(bot)
    assert "ask_weather" in project.domain.intents and "utter_weather" in project.domain.responses
    memo = "policies: [{name: RulePolicy}, {name: MemoizationPolicy}]\n"  # stories too
    agent = Agent(train_files(bot, {"config.yml": memo}))
    try:
        answer = await agent.handle_text("/ask_weather", "ann")
    finally:
        await agent.close()
    assert answer == [{"recipient_id": "ann", "text": "It is sunny."}]


async def test_new_intents_go_beside_a_domain_they_cannot_be_added_to_safely(bot: Path) -> None:
    """An inline intents list, or the user declining: domain.yml stays as it is and the new
    intents are written beside it, to be merged by hand."""
    for answer, files in (("y", FILES), ("n", {**FILES, "domain.yml": BLOCK_DOMAIN})):
        if bot.exists():
            shutil.rmtree(bot)
        script, _ = await run_files(bot, files, [*NEW_WEATHER, answer])
        assert (bot / "domain.yml").read_text() == files["domain.yml"]
        (aside,) = bot.glob("interactive_*_domain.yml")
        assert yaml.safe_load(aside.read_text()) == {"intents": ["ask_weather"]}
        assert "add them to the domain's intents" in "\n".join(script.printed)


async def test_a_domain_folder_gets_a_file_of_the_new_intents(bot: Path) -> None:
    files = {k: v for k, v in FILES.items() if k != "domain.yml"}
    files["domain/domain.yml"] = BLOCK_DOMAIN
    await run_files(bot, files, NEW_WEATHER)
    (written,) = (bot / "domain").glob("interactive_*.yml")
    assert yaml.safe_load(written.read_text())["intents"] == ["ask_weather"]
    assert (bot / "domain" / "domain.yml").read_text() == BLOCK_DOMAIN
    assert "ask_weather" in load_project(bot).domain.intents


async def test_every_export_keeps_all_the_intents_put_aside(bot: Path) -> None:
    answers = [
        "how is the weather", NEW_INTENT, "ask_weather", "y",
        "e", "y",  # export at the action question; yes, add (the inline list: put aside)
        "n", "action_listen",
        "what time is it", NEW_INTENT, "ask_time", "y", "n", "action_listen",
        "/stop", "y", "y",
    ]  # fmt: skip
    await run_files(bot, FILES, answers)
    (aside,) = bot.glob("interactive_*_domain.yml")
    assert yaml.safe_load(aside.read_text()) == {"intents": ["ask_weather", "ask_time"]}
