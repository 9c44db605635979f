"""config.yml: language, NLU pipeline and dialogue policies.

Reading it is ``chatbot.project.config_reader``; which names we serve (and which Rasa names stand
in for ours) is decided by the trainers that consume these components.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatbot.project.domain import NO_ORIGIN, Origin


@dataclass(frozen=True)
class ComponentConfig:
    """One ``- name: X`` entry of ``pipeline:`` or ``policies:`` with its other keys as params."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class ProjectConfig:
    language: str = "en"
    pipeline: tuple[ComponentConfig, ...] = ()
    policies: tuple[ComponentConfig, ...] = ()
    assistant_id: str | None = None
    file: str | None = None

    def policy(self, name: str) -> ComponentConfig | None:
        return next((p for p in self.policies if p.name == name), None)

    def component(self, name: str) -> ComponentConfig | None:
        return next((c for c in self.pipeline if c.name == name), None)
