"""Small shared helpers for tests: example bots trained once per session, domains from YAML."""

from __future__ import annotations

import functools
import socket
import subprocess
from pathlib import Path

import yaml

from chatbot.agent import TrainedModel
from chatbot.project.domain import Domain
from chatbot.project.domain_reader import domain_from_dict
from chatbot.project.loader import load_project
from chatbot.project.project import Project
from chatbot.project.training_data import NLUData

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ROOT / "domains"
STARTER = ROOT / "chatbot" / "project" / "starter"


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def domain_of(text: str) -> Domain:
    return domain_from_dict(yaml.safe_load(text))


def example_project(name: str, *, nlu: bool = False) -> Project:
    project = load_project(DOMAINS / name)
    if not nlu:
        project.nlu = NLUData()
    return project


@functools.cache
def dialogue_model(name: str) -> TrainedModel:
    """An example bot trained without NLU (messages as /intent payloads), once per session."""
    from training.train import train_project

    return train_project(example_project(name), show_progress=False)


RULES_ONLY = "policies: [{name: RulePolicy}]\n"


def train_files(root: Path, files: dict[str, str]) -> TrainedModel:
    """Write a small bot project (relative path -> text) into ``root`` and train it."""
    from training.train import train_project

    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return train_project(load_project(root), show_progress=False)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server started by a test (kill it after 20 s), and close its output pipe."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()
