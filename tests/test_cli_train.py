"""``chatbot train`` with the rest of ``rasa train``'s options: the data validator before training
where asked, torch's threads, and the flags that change nothing here, each said in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import DOMAINS
from tests.test_cli import chatbot


def fast_moodbot(tmp_path: Path) -> Path:
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    config = bot / "config.yml"
    config.write_text(config.read_text().replace("epochs: 100", "epochs: 3"))
    return bot


def test_rasa_train_options(tmp_path: Path) -> None:
    bot = fast_moodbot(tmp_path)
    result = chatbot(
        "train", "--project", str(bot), "--quiet", "--num-threads", "1", "--skip-validation",
        "--finetune", "--epoch-fraction", "0.5", "--persist-nlu-data", "--debug-plots",
        "--endpoints", str(bot / "endpoints.yml"), "--validation-max-history", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout
    assert "--finetune: parts nothing changed for are reused; the others are trained anew" in said
    for flag in ("--persist-nlu-data", "--debug-plots", "--endpoints"):
        assert f"{flag}: accepted, not needed" in said
    assert len(list((bot / "models").glob("*.model"))) == 1


def test_the_validator_runs_before_training_where_asked(tmp_path: Path) -> None:
    bot = fast_moodbot(tmp_path)
    # A warning: an NLU example of an intent the domain lacks.
    nlu = bot / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "\n- intent: order_pizza\n  examples: |\n    - a pizza\n")
    result = chatbot("train", "--project", str(bot), "--quiet", "--fail-on-validation-warnings")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "validation warning(s) (--fail-on-validation-warnings): nothing trained" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not list((bot / "models").glob("*.model"))

    # Stories that contradict each other: a warning of the validator's (Rasa's story structure
    # check), which loading does not see; it stops training where warnings are to.
    nlu.write_text(nlu.read_text().replace("- intent: order_pizza\n", "- intent: greet\n"))
    stories = bot / "data" / "stories.yml"
    stories.write_text(
        stories.read_text()
        + "\n- story: contradicts happy path\n  steps:\n  - intent: greet\n"
        + "  - action: utter_greet\n  - intent: mood_great\n  - action: utter_goodbye\n"
    )
    args = ("train", "--project", str(bot), "--quiet", "--validation-max-history", "3")
    result = chatbot(*args, "--fail-on-validation-warnings")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "after the same last 3 states" in result.stderr
    assert "utter_goodbye" in result.stderr and "utter_happy" in result.stderr
    assert not list((bot / "models").glob("*.model"))

    result = chatbot(*args)  # a warning alone: trained, as Rasa's
    assert result.returncode == 0, result.stdout + result.stderr
    assert "after the same last 3 states" in result.stderr
    assert len(list((bot / "models").glob("*.model"))) == 1


def test_rasa_test_options(tmp_path: Path) -> None:
    """``rasa test --max-stories --endpoints`` and ``rasa test nlu --domain``."""
    bot = fast_moodbot(tmp_path)
    assert chatbot("train", "--project", str(bot), "--quiet").returncode == 0
    stories = len((bot / "tests" / "test_stories.yml").read_text().split("- story:")) - 1
    assert stories > 1
    result = chatbot(
        "test", "--project", str(bot), "--max-stories", "1", "--endpoints", "endpoints.yml",
        "--out", str(tmp_path / "results"),
    )  # fmt: skip
    assert "--endpoints: accepted, not needed" in result.stdout, result.stdout + result.stderr
    assert "/1 stories)" in result.stdout

    (bot / "domain.yml").rename(bot / "mood-domain.yml")
    result = chatbot("test", "nlu", "--project", str(bot), "--out", str(tmp_path / "nlu"))
    assert result.returncode == 1 and "no domain found" in result.stderr
    result = chatbot(
        "test", "nlu", "--project", str(bot), "--domain", str(bot / "mood-domain.yml"),
        "--out", str(tmp_path / "nlu"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "nlu" / "intent_report.json").is_file()
