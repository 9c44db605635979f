"""Rasa's comparison modes: ``chatbot test nlu`` and ``chatbot test`` with two or more configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from chatbot.cli import main
from chatbot.cli_common import spaced
from chatbot.project.nlu_reader import read_nlu
from tests.helpers import DOMAINS, kept_logging
from tests.test_cli import chatbot


def test_test_nlu_compares_configs_on_less_and_less_data(tmp_path: Path) -> None:
    """Rasa's `rasa test nlu --config a.yml b.yml --runs N --percentages ...`: each config's
    intent F1 per run and share left out, in results.json (Rasa's shape) and a graph."""
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    quick = (DOMAINS / "moodbot" / "config.yml").read_text().replace("epochs: 100", "epochs: 3")
    (tmp_path / "plain.yml").write_text(quick)
    # a threshold no prediction reaches: every message is nlu_fallback, F1 0
    (tmp_path / "unsure.yml").write_text(quick.replace("threshold: 0.3", "threshold: 0.999"))
    out = tmp_path / "results"
    args = ("test", "nlu", "--project", str(bot), "--out", str(out), "--runs", "2")
    result = chatbot(
        *args, "--config", str(tmp_path / "plain.yml"), "--config", str(tmp_path / "unsure.yml"),
        "--percentages", "0, 50",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"plain", "unsure"}
    assert all(len(runs) == 2 and all(len(run) == 2 for run in runs) for runs in results.values())
    assert all(f1 == 0.0 for run in results["unsure"] for f1 in run)
    assert all(f1 > 0.3 for run in results["plain"] for f1 in run)
    assert (out / "nlu_model_comparison_graph.pdf").read_bytes().startswith(b"%PDF")
    for run in ("run_1", "run_2"):
        assert (out / run / "test.yml").is_file()
        for share in ("0%_exclusion", "50%_exclusion"):
            assert (out / run / share / "train.yml").is_file()
            assert (out / run / share / "plain_report" / "intent_report.json").is_file()
    train_sizes = [
        len(read_nlu(out / "run_1" / share / "train.yml").examples)
        for share in ("0%_exclusion", "50%_exclusion")
    ]
    assert train_sizes[1] < train_sizes[0]
    assert "plain: intent F1 (mean of 2 runs)" in result.stdout
    # Rasa's comma-free form is not click's: the files also go comma-separated
    both = f"{tmp_path / 'plain.yml'},{tmp_path / 'unsure.yml'}"
    result = chatbot(*args, "--config", both, "--percentages", "0", "--no-plot")
    assert result.returncode == 0, result.stderr
    assert len(json.loads((out / "results.json").read_text())["plain"][0]) == 1


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--percentages", "0,100"), "from 0 to 99"),
        (("--percentages", "half"), "whole numbers"),
        (("--config", "{same}"), "need names of their own"),
        (("--config", "{bad}"), "bad.yml:"),
    ],
)
def test_test_nlu_comparison_mistakes_are_said_before_training(
    tmp_path: Path, extra: tuple[str, ...], said: str
) -> None:
    (tmp_path / "a.yml").write_text("pipeline:\n  - name: DIETClassifier\n    epochs: 1\n")
    (tmp_path / "b.yml").write_text("pipeline:\n  - name: DIETClassifier\n    epochs: 1\n")
    (tmp_path / "bad.yml").write_text("pipeline:\n  - name: DIETClassifier\n    epochs: -3\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.yml").write_text("pipeline: []\n")
    values = {"same": str(tmp_path / "other" / "a.yml"), "bad": str(tmp_path / "bad.yml")}
    extra = tuple(e.format(**values) for e in extra)
    configs = ("--config", str(tmp_path / "a.yml"), "--config", str(tmp_path / "b.yml"))
    if extra[0] == "--config":
        configs = configs[:2]
    result = chatbot(
        "test", "nlu", "--project", str(DOMAINS / "moodbot"), "--out", str(tmp_path / "r"),
        *configs, *extra,
    )  # fmt: skip
    assert result.returncode == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "trained NLU" not in result.stderr


def test_test_compares_policy_configs_on_fewer_stories(tmp_path: Path) -> None:
    """Rasa's `rasa test core --config a.yml b.yml --runs N --percentages ...`: each config's
    correct test stories per run and share of stories left out."""
    (tmp_path / "full.yml").write_text(
        "policies:\n  - name: MemoizationPolicy\n  - name: RulePolicy\n"
        "  - name: TEDPolicy\n    max_history: 5\n    epochs: 5\n"
    )
    (tmp_path / "rules.yml").write_text("policies:\n  - name: RulePolicy\n")
    out = tmp_path / "results"
    args = ("test", "--project", str(DOMAINS / "moodbot"), "--out", str(out))
    configs = ("--config", f"{tmp_path / 'full.yml'},{tmp_path / 'rules.yml'}")
    result = chatbot(*args, *configs, "--runs", "2", "--percentages", "0 50")
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"full", "rules"}
    assert all(len(runs) == 2 and all(len(run) == 2 for run in runs) for runs in results.values())
    stories = len(yaml.safe_load((DOMAINS / "moodbot" / "tests" / "test_stories.yml").read_text())[
        "stories"
    ])  # fmt: skip
    assert all(0 <= n <= stories for runs in results.values() for run in runs for n in run)
    # the stories are what only memoization and the LSTM learn; the rules alone miss them
    assert results["full"][0][0] > results["rules"][0][0]
    assert (out / "core_model_comparison_graph.pdf").read_bytes().startswith(b"%PDF")
    assert "full: correct test stories (mean of 2 runs)" in result.stdout

    result = chatbot(*args, "--config", str(tmp_path / "full.yml"))
    assert result.returncode == 1 and "two or more configs to compare" in result.stderr


def test_rasa_space_separated_values() -> None:
    """Rasa's argparse ``nargs``: ``--config a.yml b.yml``, ``--percentages 0 25 50``."""
    options = {"--config": "repeat", "--percentages": "join"}
    args = ["--config", "a.yml", "b.yml", "--runs", "2", "--percentages", "0", "25", "50"]
    assert spaced(args, options, set()) == [
        "--config", "a.yml", "--config", "b.yml", "--runs", "2", "--percentages", "0 25 50",
    ]  # fmt: skip
    # A subcommand's name ends the values; written our way, nothing changes.
    assert spaced(["--config", "a.yml", "nlu"], options, {"nlu"}) == ["--config", "a.yml", "nlu"]
    ours = ["--config", "a.yml", "--config", "b.yml", "--percentages", "0 25"]
    assert spaced(ours, options, set()) == ours
    assert spaced(["--config"], options, set()) == ["--config"]


@pytest.mark.parametrize("command", [["test"], ["test", "nlu"]])
def test_comparison_modes_take_rasas_command_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caught: list[tuple[Any, ...]] = []
    target = "_compare_policies" if command == ["test"] else "_compare_configs"
    monkeypatch.setattr(f"chatbot.cli_eval.{target}", lambda *args: caught.append(args))
    configs = []
    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text("language: en\npipeline: []\npolicies: []\n")
        configs.append(str(tmp_path / name))
    project = ["--project", str(DOMAINS / "moodbot")]
    args = [*command, *project, "--config", *configs, "--percentages", "0", "50", "--runs", "2"]
    with kept_logging():
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (call,) = caught
    assert [str(c) for c in call[2]] == configs
    assert (call[3], call[4]) == (2, "0 50")


COMMANDS = [
    ["init"], ["train"], ["train", "nlu"], ["train", "core"], ["test"], ["test", "core"],
    ["test", "nlu"], ["shell"], ["shell", "nlu"], ["run"], ["interactive"], ["visualize"],
    ["data", "validate"], ["data", "migrate"], ["data", "convert", "nlu"],
    ["data", "split", "nlu"], ["data", "split", "stories"], ["export"], ["import"],
    ["evaluate", "markers"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("flag", ["-v", "-vv", "--debug"])
def test_every_command_takes_rasas_logging_options(command: list[str], flag: str) -> None:
    """Rasa gives every command its logging options (`rasa train -v`); ours said "No such
    option" but for shell and run."""
    with kept_logging():
        result = CliRunner().invoke(main, [*command, flag, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "A", "B"],
        ["train", "core", "-s", "A", "B"],
        ["train", "nlu", "-u", "A", "--nlu", "B"],
        ["train", "--data", "A", "--data", "B"],
    ],
    ids=" ".join,
)
def test_train_takes_rasas_data_options(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa's `--data a b` (argparse's nargs), `train core -s`, `train nlu -u` (were "No such
    command 'b.yml'" / "No such option")."""
    caught: list[dict[str, Any]] = []
    monkeypatch.setattr("chatbot.cli_train._train", lambda options, **_: caught.append(options))
    for name in ("A", "B"):
        (tmp_path / name).write_text("version: '3.1'\n")
    paths = [str(tmp_path / a) if a in ("A", "B") else a for a in args]
    with kept_logging():
        result = CliRunner().invoke(main, paths, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (options,) = caught
    assert [p.name for p in options["data"]] == ["A", "B"]
