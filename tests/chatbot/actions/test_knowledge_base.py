"""A knowledge-base bot end to end: lookup-table entities (no NLU model), the query action from
the action registry, a masked template filled from the slots it set."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from chatbot.actions.knowledge_base import (
    KnowledgeBase,
    KnowledgeBaseCountAction,
    KnowledgeBaseNextAction,
    KnowledgeBaseQueryAction,
    knowledge_base_actions,
)
from chatbot.actions.registry import ActionRegistry
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError
from chatbot.nlu.lookup_extractor import LookupEntityExtractor
from chatbot.project.config import ComponentConfig, ProjectConfig
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.project import Project
from chatbot.project.stories import ActionStep, SlotStep, Story, UserStep
from chatbot.project.training_data import EntityAnnotation, LookupTable, NLUData
from training.train import train_project

DOMAIN = """
version: "3.1"
entities: [cuisine]
slots:
  cuisine: {type: text, mappings: [{type: from_entity, entity: cuisine}]}
  restaurant: {type: text, mappings: [{type: custom}]}
  rating: {type: any, influence_conversation: false, mappings: [{type: custom}]}
  kb_results: {type: any, influence_conversation: false, mappings: [{type: custom}]}
responses:
  utter_ask_cuisine: [{text: "which food?"}]
  utter_offer: [{text: "try {restaurant}"}]
  utter_sorry: [{text: "nothing found"}]
actions: [action_query_knowledge_base, action_next_knowledge_base_result]
"""
KB = "resto_a R_cuisine thai\nresto_a R_rating 3\nresto_b R_cuisine thai\nresto_b R_rating 7\n"


def story(name: str, food: str, restaurant: str) -> Story:
    text = f"{food} please"
    return Story(
        name,
        "story",
        (
            UserStep(text="hello"),
            ActionStep("utter_ask_cuisine"),
            UserStep(text=text, entities=(EntityAnnotation(0, len(food), food, "cuisine"),)),
            SlotStep((("cuisine", food),)),
            ActionStep("action_query_knowledge_base"),
            SlotStep((("restaurant", restaurant),)),
            ActionStep("utter_offer"),
        ),
    )


def train_bot(domain: Domain, nlu: NLUData, stories: list[Story]) -> TrainedModel:
    """Lookup-table entities and an LSTM policy, trained on one torch thread."""
    config = ProjectConfig(
        pipeline=(ComponentConfig("RegexEntityExtractor", {"use_lookup_tables": True}),),
        policies=(ComponentConfig("LSTMPolicy", {"epochs": 150, "augmentation_factor": 0}),),
    )
    project = Project(Path("kb-bot"), domain, nlu, stories=stories, config=config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_project(project, seed=1, show_progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    domain = domain_from_dict(yaml.safe_load(DOMAIN))
    nlu = NLUData(
        synonyms={"noodles": "thai"}, lookups=[LookupTable("cuisine", ("thai", "greek", "noodles"))]
    )
    model = train_bot(domain, nlu, [story("a", "thai", "resto_b"), story("b", "greek", "resto_g")])
    assert isinstance(model.nlu, LookupEntityExtractor)
    path = tmp_path_factory.mktemp("model") / "kb.model"
    model.to_file(path)
    return path


def test_the_bot_queries_the_knowledge_base_and_fills_the_template(
    model_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "kb.txt").write_text(KB, encoding="utf-8")
    kb = KnowledgeBase.from_babi(tmp_path / "kb.txt")
    model = TrainedModel.from_file(model_file)  # the extractor comes back from the file
    assert isinstance(model.nlu, LookupEntityExtractor)
    agent = Agent(model, actions=knowledge_base_actions(kb, ["cuisine"]))

    async def talk() -> list[str | None]:
        texts: list[str | None] = []
        for text in ("hello", "Noodles please"):  # a synonym of thai
            texts += [m.get("text") for m in await agent.handle_text(text, "u1")]
        return texts

    assert asyncio.run(talk()) == ["which food?", "try resto_b"]  # best rated first


def test_registry_actions_come_first_and_must_match_their_name(tmp_path: Path) -> None:
    domain = domain_from_dict(yaml.safe_load(DOMAIN))
    actions = knowledge_base_actions(KnowledgeBase(), ["cuisine"])
    registry = ActionRegistry(domain, None, actions)
    assert registry.get("action_query_knowledge_base") is actions["action_query_knowledge_base"]
    with pytest.raises(ConfigError, match="registered as"):
        ActionRegistry(domain, None, {"other": actions["action_query_knowledge_base"]})


def test_the_offered_item_says_its_own_values_of_the_constraints(tmp_path: Path) -> None:
    """The constraint slots keep what the user asked for (none here: any cuisine); what the item
    itself has is in ``<item>_<attribute>`` slots, for "{restaurant} serves {restaurant_cuisine}"."""
    (tmp_path / "kb.txt").write_text(KB + "resto_c R_cuisine greek\nresto_c R_rating 9\n")
    kb = KnowledgeBase.from_babi(tmp_path / "kb.txt")
    query = KnowledgeBaseQueryAction(kb, ["cuisine"])
    slots = {e["name"]: e["value"] for e in query.events({"cuisine": None})}
    assert slots["restaurant"] == "resto_c"
    assert slots["restaurant_cuisine"] == "greek"
    assert "cuisine" not in slots  # the user's constraint is not overwritten
    assert slots["rating"] == "9"
    later = {e["name"]: e["value"] for e in KnowledgeBaseNextAction(kb, ["cuisine"]).events(slots)}
    assert (later["restaurant"], later["restaurant_cuisine"]) == ("resto_b", "thai")


def test_the_count_says_none_one_or_several_and_only_when_it_changes(tmp_path: Path) -> None:
    (tmp_path / "kb.txt").write_text(KB + "resto_c R_cuisine greek\nresto_c R_rating 9\n")
    count = KnowledgeBaseCountAction(KnowledgeBase.from_babi(tmp_path / "kb.txt"), ["cuisine"])
    values = {
        food: [(e["name"], e["value"]) for e in count.events({"cuisine": food})]
        for food in ("korean", "greek", "thai", None)
    }
    assert values == {
        "korean": [("kb_matches", "none")],
        "greek": [("kb_matches", "one")],
        "thai": [("kb_matches", "several")],
        None: [("kb_matches", "several")],  # no constraint: every item matches
    }
    assert count.events({"cuisine": "thai", "kb_matches": "several"}) == []


COUNT_DOMAIN = DOMAIN.replace(
    "responses:",
    "  kb_matches:\n"
    "    type: categorical\n"
    "    values: [none, one, several]\n"
    "    mappings: [{type: custom, action: action_count_knowledge_base}]\n"
    "responses:",
).replace("actions: [", "actions: [action_count_knowledge_base, ")


def count_story(name: str, food: str, matches: str, restaurant: str | None) -> Story:
    asked = UserStep(
        text=f"{food} please", entities=(EntityAnnotation(0, len(food), food, "cuisine"),)
    )
    steps: list[Any] = [
        UserStep(text="hello"),
        SlotStep((("kb_matches", "several"),)),
        ActionStep("utter_ask_cuisine"),
        asked,
        SlotStep((("cuisine", food), ("kb_matches", matches))),
    ]
    if restaurant is None:
        steps.append(ActionStep("utter_sorry"))
    else:
        steps += [
            ActionStep("action_query_knowledge_base"),
            SlotStep((("restaurant", restaurant),)),
            ActionStep("utter_offer"),
        ]
    return Story(name, "story", tuple(steps))


def test_the_count_after_each_user_message_tells_the_policy_nothing_matches(
    tmp_path: Path,
) -> None:
    """The count runs as a custom slot mapping's action after every user message; the policy
    learns from its slot, not from the cuisine's word, that nothing matches: a cuisine it never
    saw in a story ("korean", in the lookup table, not in the base) gets the apology, where two
    of the three stories query the base."""
    (tmp_path / "kb.txt").write_text(KB + "resto_f R_cuisine french\nresto_f R_rating 5\n")
    kb = KnowledgeBase.from_babi(tmp_path / "kb.txt")
    domain = domain_from_dict(yaml.safe_load(COUNT_DOMAIN))
    foods = ("thai", "greek", "noodles", "korean", "french", "tapas")
    nlu = NLUData(synonyms={"noodles": "thai"}, lookups=[LookupTable("cuisine", foods)])
    stories = [
        count_story("a", "thai", "several", "resto_b"),
        count_story("b", "greek", "none", None),
        count_story("c", "french", "one", "resto_f"),
    ]
    model = train_bot(domain, nlu, stories)
    agent = Agent(model, actions=knowledge_base_actions(kb, ["cuisine"]))

    async def talk(sender: str, food: str) -> tuple[list[str | None], list[Any]]:
        texts: list[str | None] = []
        for text in ("hello", f"{food} please"):
            texts += [m.get("text") for m in await agent.handle_text(text, sender)]
        stored = await agent.store.load(sender, all_sessions=True)
        matches = [e["value"] for e in stored.events if e.get("name") == "kb_matches"]
        return texts, matches

    assert asyncio.run(talk("u1", "korean")) == (
        ["which food?", "nothing found"],
        ["several", "none"],
    )
    assert asyncio.run(talk("u2", "thai")) == (["which food?", "try resto_b"], ["several"])
