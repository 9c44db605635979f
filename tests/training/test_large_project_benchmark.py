"""The large-project benchmark's generator writes a project that validates, trains and answers:
its smallest size, XS, in-process (the benchmark runs the real commands on the larger ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.actions.in_process import InProcessExecutor
from chatbot.agent import Agent, TrainedModel
from chatbot.cli_data import validation_problems
from chatbot.project.loader import load_project
from training.benchmarks._large_project_data import SIZES, GeneratedProject, generate
from training.train import train_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> GeneratedProject:
    return generate(tmp_path_factory.mktemp("large") / "xs", "XS", epochs=2)


@pytest.fixture(scope="module")
def model(project: GeneratedProject) -> TrainedModel:
    return train_project(load_project(project.root), show_progress=False)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_size_and_a_seed_give_the_same_files(project: GeneratedProject, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", "XS", epochs=2)
    assert files_of(again.root) == files_of(project.root)
    other = generate(tmp_path / "other", "XS", epochs=2, seed=7)
    assert files_of(other.root) != files_of(project.root)
    size = SIZES["XS"]
    assert project.counts["intents"] == size.intents + 5
    assert project.counts["stories"] == size.stories
    assert project.counts["forms"] == size.forms
    assert project.counts["responses"] == size.responses
    assert project.counts["lookup_entries"] == size.lookup


def test_the_project_has_no_problem_for_the_validator(project: GeneratedProject) -> None:
    assert validation_problems(project.root, None, (), None, None) == []


def test_the_config_trains_with_the_epochs_asked_for(project: GeneratedProject) -> None:
    config = (project.root / "config.yml").read_text()
    assert config.count("epochs: 2") == 2  # DIET's and TED's


async def test_the_trained_model_answers_rule_and_story_intents(
    project: GeneratedProject, model: TrainedModel
) -> None:
    assert model.nlu is not None
    assert set(model.domain.intents) >= {"intent_0", "greet", "affirm", "deny"}
    # A probe is an intent's words and the text its answer holds; its answer (as a payload,
    # the NLU aside after two epochs) is the intent's response, by a rule or by the stories.
    intents = sorted({holds.removeprefix("for ").removesuffix(".") for _, holds in project.probes})
    assert len(intents) == SIZES["XS"].intents - SIZES["XS"].forms
    agent = Agent(model, action_executor=InProcessExecutor(project.root, "actions"))
    try:
        for intent in intents:  # intent_4 and every seventh story intent: a custom action too
            replies = await agent.handle_text(f"/{intent}", f"user-{intent}")
            assert any(f"for {intent}." in (r.get("text") or "") for r in replies), replies
            assert ("custom 0" in str(replies)) == (intent == "intent_4"), replies
    finally:
        await agent.close()


async def test_a_form_asks_its_slots_and_says_what_it_was_told(
    project: GeneratedProject, model: TrainedModel
) -> None:
    agent = Agent(model, action_executor=InProcessExecutor(project.root, "actions"))
    try:
        texts = [r["text"] for r in await agent.handle_text("/intent_0", "form-user")]
        said: list[str] = []
        while not any(text.startswith("Done with form_0") for text in texts):
            assert len(said) < 5 and texts[-1].startswith("What is your fslot_"), texts
            said.append(f"answer number {len(said)}")
            texts = [r["text"] for r in await agent.handle_text(said[-1], "form-user")]
        assert len(said) >= 3
        assert texts == [f"Done with form_0: {' '.join(said)}"]
    finally:
        await agent.close()
