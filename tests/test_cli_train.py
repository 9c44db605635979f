"""``chatbot train`` with the rest of ``rasa train``'s options: the data validator before training
where asked, torch's threads, and the flags that change nothing here, each said in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from chatbot import model_file
from chatbot.cli_common import model_file_path
from chatbot.errors import ConfigError
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
    flags = ("--epoch-fraction", "--skip-validation", "--persist-nlu-data", "--debug-plots")
    for flag in (*flags, "--endpoints"):
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


def test_out_is_a_folder_as_rasas_and_no_other_file_is_overwritten(tmp_path: Path) -> None:
    """Rasa's `--out` is a folder (`rasa train --out trained_models`); a name ending in .model
    is that file. What is there and is not a model of ours (the project's own NLU data) is
    named in an error, before anything trains, and left as it was."""
    bot = fast_moodbot(tmp_path)
    nlu = bot / "data" / "nlu.yml"
    before = nlu.read_bytes()
    notes = tmp_path / "notes.model"
    notes.write_text("my notes")
    for out, error in (
        (
            str(nlu),
            f"error: --out {nlu} is a file, not a folder (--out names a folder, as Rasa's, "
            "unless it ends in .model); it is not overwritten. Give a folder, or a file name "
            "ending in .model",
        ),
        (
            str(notes),
            f"error: {notes} is there and is not a chatbot model file; it is not overwritten. "
            "Give --out a folder, or a new file name ending in .model",
        ),
    ):
        result = chatbot("train", "--project", str(bot), "--out", out, "--quiet")
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.strip().splitlines()[-1] == error
        assert "Trained model saved" not in result.stdout
    assert nlu.read_bytes() == before and notes.read_text() == "my notes"

    result = chatbot("train", "--out", "trained_models", "--quiet", cwd=bot)
    assert result.returncode == 0, result.stdout + result.stderr
    [model] = (bot / "trained_models").iterdir()
    assert model.suffix == ".model" and model.is_file()


def test_model_file_path_takes_a_folder_or_a_model_file(tmp_path: Path) -> None:
    own = tmp_path / "own.model"
    own.write_bytes(model_file.MAGIC + b"rest")  # a model of ours: training again replaces it
    (tmp_path / "folder.model").mkdir()
    assert model_file_path(tmp_path, str(own), None) == own
    assert model_file_path(tmp_path, str(tmp_path / "new.model"), None) == tmp_path / "new.model"
    for out in ("trained", "trained/", "folder.model", "models.v2"):
        path = model_file_path(tmp_path, f"{tmp_path}/{out}", None)
        assert path.parent == tmp_path / out.rstrip("/") and path.suffix == ".model"
    assert model_file_path(tmp_path, str(tmp_path), "own") == own
    (tmp_path / "data.model").write_text("nlu: []\n")
    with pytest.raises(ConfigError, match=r"data\.model is there and is not a chatbot model"):
        model_file_path(tmp_path, str(tmp_path), "data")
    own.with_suffix("").write_bytes(own.read_bytes())  # "own": a name without .model
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        model_file_path(tmp_path, str(own.with_suffix("")), None)


def test_a_stale_test_story_warns_at_train_and_fails_validate(tmp_path: Path) -> None:
    """Rasa's `rasa train` reads the data alone: a test story naming an intent and a response the
    domain no longer has is a warning there (training goes on), an error in `data validate`."""
    bot = fast_moodbot(tmp_path)
    (bot / "tests" / "test_stale.yml").write_text(
        'version: "3.1"\nstories:\n- story: stale\n  steps:\n  - user: hello\n'
        "    intent: no_such_intent\n  - action: utter_nothing_here\n"
    )
    stale = bot / "tests" / "test_stale.yml"
    result = chatbot(
        "train", "--project", str(bot), "--quiet", "--validation-max-history", "5"
    )  # the validator run first leaves test stories to the loading too
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"{stale}:5: intent 'no_such_intent' is not in the domain (key 'intent', value "
        "'no_such_intent')"
    ) in result.stderr
    assert "(a test story, which training does not read)" in result.stderr
    assert "error:" not in result.stderr
    assert len(list((bot / "models").glob("*.model"))) == 1

    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 1
    assert f"error: {stale}:5: intent 'no_such_intent'" in result.stderr
    assert f"error: {stale}:7: response 'utter_nothing_here'" in result.stderr

    # A test file that is not even YAML does not stop training either.
    stale.write_text("stories: [\n")
    result = chatbot("train", "--project", str(bot), "--quiet", "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{stale}:" in result.stderr and "(a test story, which training does not read)" in (
        result.stderr
    )
    assert len(list((bot / "models").glob("*.model"))) == 2


def test_a_diverging_training_is_an_error_and_writes_no_model(tmp_path: Path) -> None:
    bot = fast_moodbot(tmp_path)
    config = bot / "config.yml"
    config.write_text(
        config.read_text().replace("epochs: 3", "epochs: 3\n    learning_rate: 1e30", 1)
    )
    result = chatbot("train", "--project", str(bot), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(
        r"^error: the NLU model: the training diverged in epoch \d+ \(the loss is no longer a "
        r"finite number\): lower its learning_rate \(now 1e\+30\) in config\.yml$",
        result.stderr,
        re.MULTILINE,
    ), result.stderr
    assert "Traceback" not in result.stderr
    assert not (bot / "models").exists() or not list((bot / "models").iterdir())
