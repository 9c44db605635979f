"""Training reuses the parts of an earlier model that nothing changed for (Rasa's training cache):
each part's fingerprint covers what that part is trained on, no more and no less, and a part
taken from an earlier model is the one a full training would give."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatbot import model_file
from chatbot.cli_common import model_file_path
from chatbot.project.loader import load_project
from tests.helpers import DOMAINS, ROOT
from tests.test_cli import chatbot
from training.reuse import find_reusable, part_fingerprints
from training.train import train_to_file


def moodbot(root: Path) -> Path:
    """moodbot, trained briefly."""
    shutil.copytree(DOMAINS / "moodbot", root, ignore=shutil.ignore_patterns("models", "results"))
    config = (root / "config.yml").read_text().replace("epochs: 100", "epochs: 3")
    (root / "config.yml").write_text(config)
    return root


def train(bot: Path, out: Path, *, force: bool = False) -> tuple[Path, dict[str, str]]:
    """What `chatbot train` does: the model's path, and the parts it took from earlier ones."""
    project = load_project(bot)
    path = model_file_path(bot, str(out) + "/", None)
    found = {}
    if not force:
        fingerprints = part_fingerprints(project, seed=42, augmentation=None)
        found = find_reusable([out], fingerprints, ["nlu", "core"])
    model = train_to_file(project, path, show_progress=False, reuse=found)
    return path, model.meta.get("reused", {})


def tensors(path: Path) -> dict[str, np.ndarray]:
    return model_file.load(path)[1]


def same_tensors(first: Path, second: Path) -> bool:
    a, b = tensors(first), tensors(second)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def add_story(bot: Path) -> None:
    with (bot / "data" / "stories.yml").open("a") as file:
        file.write("\n- story: thanks\n  steps:\n  - intent: affirm\n  - action: utter_happy\n")


def test_an_unchanged_project_takes_both_parts_from_the_earlier_model(tmp_path: Path) -> None:
    bot, out = moodbot(tmp_path / "bot"), tmp_path / "models"
    first, reused = train(bot, out)
    assert reused == {}
    second, reused = train(bot, out)
    assert second != first and second.is_file()
    assert reused == {"nlu": first.name, "core": first.name}
    assert same_tensors(first, second)
    meta = model_file.read_meta(second)
    assert meta["fingerprints"] == model_file.read_meta(first)["fingerprints"]


def test_a_new_story_trains_the_policies_alone_into_what_a_full_training_gives(
    tmp_path: Path,
) -> None:
    bot, out = moodbot(tmp_path / "bot"), tmp_path / "models"
    first, _ = train(bot, out)
    add_story(bot)
    second, reused = train(bot, out)
    assert reused == {"nlu": first.name}
    full, reused = train(bot, tmp_path / "full", force=True)
    assert reused == {}
    assert same_tensors(second, full)  # reusing the NLU changed nothing
    first_nlu = model_file.unprefixed("nlu.", tensors(first))
    second_nlu = model_file.unprefixed("nlu.", tensors(second))
    assert first_nlu.keys() == second_nlu.keys()


def test_a_new_nlu_example_trains_the_nlu_alone(tmp_path: Path) -> None:
    bot, out = moodbot(tmp_path / "bot"), tmp_path / "models"
    first, _ = train(bot, out)
    nlu = bot / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("    - hey\n", "    - hey\n    - howdy partner\n", 1))
    _, reused = train(bot, out)
    assert reused == {"core": first.name}


def fingerprints(bot: Path, *, seed: int = 42, augmentation: int | None = None) -> dict[str, str]:
    return part_fingerprints(load_project(bot), seed=seed, augmentation=augmentation)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "changed"),
    [
        # wording of an example without entities: the NLU alone
        ("data/nlu.yml", "    - hey\n", "    - hey there\n", {"nlu"}),
        # an annotated example: the NLU, and form training's knowledge of entity values
        ("data/nlu.yml", "    - hey\n", "    - hey [Ann](name)\n", {"nlu", "core"}),
        # a story, a rule: the policies alone
        ("data/stories.yml", "  - action: utter_happy\n", "  - action: utter_goodbye\n", {"core"}),
        ("data/rules.yml", "- rule: Say goodbye", "- rule: Bid farewell", {"core"}),
        # settings of the pipeline and of a policy
        ("config.yml", "threshold: 0.3", "threshold: 0.4", {"nlu"}),
        ("config.yml", "max_history: 5", "max_history: 4", {"core"}),
        # a response's text: the domain, which the policies hold and mask actions with
        ("domain.yml", "utter_happy:\n", "utter_happy:\n  - text: Great!\n", {"core"}),
        # comments and blank lines move every line number below them: nothing to retrain
        ("data/nlu.yml", "nlu:\n", "# greetings first\n\nnlu:\n", set()),
        ("data/stories.yml", "stories:\n", "stories:\n# the paths\n", set()),
    ],
)
def test_each_part_is_retrained_for_what_it_is_trained_on(
    tmp_path: Path, file: str, old: str, new: str, changed: set[str]
) -> None:
    bot = moodbot(tmp_path / "bot")
    if "[Ann](name)" in new:
        edit(bot / "domain.yml", "intents:", "entities:\n  - name\nintents:")
    before = fingerprints(bot)
    edit(bot / file, old, new)
    after = fingerprints(bot)
    assert {part for part in before if before[part] != after[part]} == changed


def test_the_seed_and_augmentation_are_part_of_the_fingerprints(tmp_path: Path) -> None:
    bot = moodbot(tmp_path / "bot")
    base = fingerprints(bot)
    other_seed = fingerprints(bot, seed=7)
    assert base["nlu"] != other_seed["nlu"] and base["core"] != other_seed["core"]
    augmented = fingerprints(bot, augmentation=0)
    assert base["nlu"] == augmented["nlu"] and base["core"] != augmented["core"]


def test_fingerprints_are_the_same_in_every_process() -> None:
    """Python's string hashes differ between processes; no set order may reach a fingerprint."""
    script = (
        "from chatbot.project.loader import load_project\n"
        "from training.reuse import _digest, part_fingerprints\n"
        f"p = load_project({str(DOMAINS / 'restaurant')!r})\n"
        "print(sorted(part_fingerprints(p, seed=42, augmentation=None).items()))\n"
        # a set in a project's data (none of the example bots has one) hashes alike too
        "print(_digest({'params': frozenset(f'value {i}' for i in range(20))}))\n"
    )
    seen = set()
    for hash_seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
        seen.add(result.stdout)
    assert len(seen) == 1


def test_a_damaged_earlier_model_is_passed_over_and_the_part_trained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot, out = moodbot(tmp_path / "bot"), tmp_path / "models"
    first, _ = train(bot, out)
    (out / "notes.model").write_text("not a model")
    (out / "empty.model").write_bytes(b"")
    data = first.read_bytes()
    first.write_bytes(data[: len(data) - 100])  # metadata whole, tensors cut short
    with caplog.at_level(logging.WARNING):
        second, reused = train(bot, out)
    assert reused == {}
    assert "NLU not reused, trained anew" in caplog.text and "truncated" in caplog.text
    assert model_file.read_meta(second)["parts"] == ["nlu", "core"]


def test_read_meta_refuses_what_is_not_a_whole_header(tmp_path: Path) -> None:
    path = tmp_path / "x.model"
    path.write_bytes(model_file.MAGIC + b"\x01\x00\x00\x00" + (2**62).to_bytes(8, "little"))
    with pytest.raises(model_file.ModelFileError, match="truncated"):
        model_file.read_meta(path)
    path.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(model_file.ModelFileError, match="not a chatbot model"):
        model_file.read_meta(path)


def test_a_second_model_in_the_same_second_gets_a_name_of_its_own(tmp_path: Path) -> None:
    first = model_file_path(tmp_path, str(tmp_path) + "/", None)
    first.write_bytes(b"x")
    second = model_file_path(tmp_path, str(tmp_path) + "/", None)
    if second.name[:15] == first.name[:15]:  # the clock did not move on between the two
        assert second.name == first.name[:-6] + "-2.model"
    assert second != first


def test_the_command_says_what_it_reuses_and_dry_run_answers_with_rasas_codes(
    tmp_path: Path,
) -> None:
    bot = moodbot(tmp_path / "bot")
    project = ("--project", str(bot))
    assert chatbot("train", *project, "--dry-run").returncode == 1  # no model yet
    assert not (bot / "models").exists()
    result = chatbot("train", *project, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "reused" not in result.stdout

    result = chatbot("train", *project, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No training required" in result.stdout
    result = chatbot("train", *project, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Nothing changed since" in result.stdout and "its NLU and dialogue policies" in (
        result.stdout
    )
    shutil.rmtree(bot / "models")
    assert chatbot("train", *project, "--quiet").returncode == 0  # the one model again
    result = chatbot("train", *project, "--dry-run", "--force")
    assert result.returncode == 8 and "The training was forced." in result.stdout
    assert len(list((bot / "models").iterdir())) == 1  # a dry run writes nothing

    add_story(bot)
    result = chatbot("train", *project, "--dry-run")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NLU: unchanged since" in result.stdout and "dialogue policies: trained" in result.stdout
    result = chatbot("train", *project, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "NLU: nothing it is trained on changed since" in result.stdout
    assert "dialogue policies: nothing" not in result.stdout
    result = chatbot("train", *project, "--quiet", "--force")
    assert result.returncode == 0 and "reused" not in result.stdout

    # another output folder: nothing to take, unless a folder is named to look in
    result = chatbot("train", "nlu", *project, "--out", f"{tmp_path / 'a'}/", "--quiet")
    assert result.returncode == 0 and "reused" not in result.stdout
    result = chatbot(
        "train", "nlu", *project, "--out", f"{tmp_path / 'b'}/", "--reuse-from", str(bot / "models")
    )  # `train nlu` takes the NLU of a full model
    assert result.returncode == 0, result.stderr
    assert f"NLU: nothing it is trained on changed since {bot / 'models'}" in result.stdout
