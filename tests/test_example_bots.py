"""Every example bot and the starter bot pass 100% of their own test stories with the policies
their config.yml names (the stories' intents are given, so no NLU is trained here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.project.loader import check_project
from chatbot.project.training_data import NLUData
from tests.helpers import DOMAINS, STARTER
from training.evaluate import evaluate_stories
from training.train import train_project

BOTS = sorted(
    p for p in DOMAINS.iterdir() if (p / "domain.yml").exists() or (p / "domain").is_dir()
)


@pytest.mark.parametrize("bot", [*BOTS, STARTER], ids=lambda p: p.name)
def test_bot_passes_all_its_test_stories(bot: Path) -> None:
    project, problems = check_project(bot)
    assert not problems, "\n".join(map(str, problems))
    assert project is not None and project.test_stories, f"{bot.name} has no test stories"
    project.nlu = NLUData()
    model = train_project(project, show_progress=False)
    evaluation = evaluate_stories(model, project.test_stories)
    failed = [r.name for r in evaluation.results if not r.passed]
    assert not failed, f"{bot.name}: failed test stories {failed}"
    assert evaluation.action_accuracy == 1.0


def test_there_are_at_least_two_example_bots_and_the_default_has_a_form() -> None:
    assert len(BOTS) >= 2
    project, _ = check_project(DOMAINS / "restaurant")
    assert project is not None and project.domain.forms
