"""A bot project as loaded from its folder (see ``chatbot.project.loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatbot.project.config import ProjectConfig
from chatbot.project.domain import Domain
from chatbot.project.endpoints import Credentials, Endpoints
from chatbot.project.stories import Story
from chatbot.project.training_data import NLUData


@dataclass
class Project:
    root: Path
    domain: Domain
    nlu: NLUData = field(default_factory=NLUData)
    stories: list[Story] = field(default_factory=list)
    rules: list[Story] = field(default_factory=list)
    test_stories: list[Story] = field(default_factory=list)
    # Rules in the test files: checked, not tested (Rasa's `rasa test` tests stories only).
    test_rules: list[Story] = field(default_factory=list)
    config: ProjectConfig = field(default_factory=ProjectConfig)
    endpoints: Endpoints = field(default_factory=Endpoints)
    credentials: Credentials = field(default_factory=Credentials)
