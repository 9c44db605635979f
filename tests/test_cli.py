"""The ``chatbot`` command as a user runs it: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chatbot.project.loader import load_project
from chatbot.project.nlu_reader import read_nlu
from tests.helpers import DOMAINS, ROOT, free_port, stop_process


def chatbot(
    *args: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args],
        cwd=cwd or ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_init_train_test_and_shell_on_a_starter_bot(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    result = chatbot("init", str(bot))
    assert result.returncode == 0, result.stderr
    assert (bot / "domain.yml").is_file() and (bot / "tests").is_dir()
    assert chatbot("init", str(bot)).returncode == 1  # not empty: refused

    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 0, result.stdout + result.stderr

    model = tmp_path / "bot.model"
    result = chatbot("train", "--project", str(bot), "--out", str(model), "--quiet")
    assert result.returncode == 0, result.stderr
    assert model.is_file()

    out = tmp_path / "results"
    result = chatbot("test", "--project", str(bot), "--model", str(model), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Conversation accuracy: 1.000" in result.stdout
    report = json.loads((out / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
    assert (out / "failed_test_stories.yml").is_file()
    # The NLU part: the model's NLU on the test stories' user texts.
    assert "NLU on the test stories' user messages (10)" in result.stdout  # its 10 user: steps
    intents = json.loads((out / "intent_report.json").read_text())
    assert intents["weighted avg"]["support"] == 10

    # chatbot test nlu: on a file with the trained model, an 80/20 split, cross-validation.
    out = tmp_path / "nlu-file"
    result = chatbot(
        "test", "nlu", "--project", str(bot), "--model", str(model), "--nlu",
        str(bot / "data" / "nlu.yml"), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    examples = len(read_nlu(bot / "data" / "nlu.yml").examples)
    assert f"the examples of {bot / 'data' / 'nlu.yml'} ({examples})" in result.stdout
    assert (
        json.loads((out / "intent_report.json").read_text())["weighted avg"]["support"] == examples
    )
    assert (out / "intent_confusion_matrix.png").is_file() and (
        out / "intent_histogram.png"
    ).is_file()

    # A tests/ file that holds no stories is named (Rasa's e2e test cases look like that).
    empty = tmp_path / "only-cases"
    empty.mkdir()
    (empty / "test_cases.yml").write_text("test_cases:\n- test_case: a\n  steps: []\n")
    result = chatbot("test", "--project", str(bot), "--model", str(model), "--stories", str(empty))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "test_cases.yml hold no 'stories:'" in result.stderr
    rules = empty / "rules.yml"  # a file named: it holds rules only
    rules.write_text("rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_greet\n")
    result = chatbot("test", "--project", str(bot), "--model", str(model), "--stories", str(rules))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "rules.yml: it holds no 'stories:' (rules are not tested)" in result.stderr
    # Without a tests/ folder the training stories are tested, as Rasa falls back to data/.
    (bot / "tests").rename(tmp_path / "tests-aside")
    out = tmp_path / "results-data"
    result = chatbot("test", "--project", str(bot), "--model", str(model), "--out", str(out))
    (tmp_path / "tests-aside").rename(bot / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests does not exist: testing the training stories instead" in result.stdout
    stories = len(load_project(bot).stories)
    assert json.loads((out / "story_report.json").read_text())["conversation_accuracy"] == {
        "accuracy": 1.0, "correct": stories, "with_warnings": 0, "total": stories,
    }  # fmt: skip
    # `chatbot test` is end to end, as `rasa test`: a text the NLU reads as another intent
    # fails its story; `chatbot test core` (Rasa's `rasa test core`) gives the story's intent.
    misread = tmp_path / "misread.yml"
    misread.write_text(
        "stories:\n- story: greeted with a goodbye\n  steps:\n"
        "  - user: goodbye, see you later\n    intent: greet\n  - action: utter_greet\n"
    )
    runs = {
        ("test",): 1, ("test", "core"): 0, ("test", "core", "--e2e"): 1,
    }  # fmt: skip
    for command, code in runs.items():
        args = ("--project", str(bot), "--model", str(model), "--stories", str(misread))
        to = ("--out", str(tmp_path / "results-e2e"))
        result = chatbot(*command, *args, *to, "--fail-on-prediction-errors")
        assert result.returncode == code, (command, result.stdout + result.stderr)
        assert ("End to end: 1 user messages" in result.stdout) == (code == 1), result.stdout
        assert ("NLU on the test stories" in result.stdout) == (command == ("test",))
        # As Rasa's: a failed story fails the command only where the flag asks for it.
        assert chatbot(*command, *args, *to).returncode == 0

    result = chatbot("shell", "--project", str(bot), "--model", str(model), stdin="/greet\n/stop\n")
    assert result.returncode == 0, result.stderr
    assert "Your input ->" in result.stdout and len(result.stdout.splitlines()) > 2
    # Rasa's `-m FOLDER`: the newest model in it; a folder without one is named.
    greeting = result.stdout.splitlines()[1]
    result = chatbot("shell", "--project", str(bot), "-m", str(tmp_path), stdin="/greet\n/stop\n")
    assert result.returncode == 0 and result.stdout.splitlines()[1] == greeting, result.stderr
    result = chatbot("shell", "--project", str(bot), "-m", str(out), stdin="/stop\n")
    assert result.returncode == 2 and "no trained model (*.model) here" in result.stderr

    # chatbot shell nlu: the parse of each message, as JSON (options before or after `nlu`).
    for args in (("shell", "--project", str(bot), "--model", str(model), "nlu"),
                 ("shell", "nlu", "--project", str(bot), "--model", str(model))):  # fmt: skip
        result = chatbot(*args, stdin="hello there\n/stop\n")
        assert result.returncode == 0, result.stderr
        parsed = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
        assert parsed["text"] == "hello there" and parsed["intent"]["name"] == "greet"
        assert parsed["intent_ranking"][0]["name"] == "greet"


def test_test_nlu_splits_and_cross_validates_a_starter_bot(tmp_path: Path) -> None:
    """`chatbot test nlu` without a model: an 80/20 split, cross-validation (Rasa's flags too)."""
    bot = tmp_path / "bot"
    assert chatbot("init", str(bot)).returncode == 0
    examples = len(read_nlu(bot / "data" / "nlu.yml").examples)
    fast = (bot / "config.yml").read_text().replace("epochs: 100", "epochs: 5")
    (bot / "config.yml").write_text(fast)
    out = tmp_path / "nlu-split"
    result = chatbot("test", "--project", str(bot), "--out", str(out), "nlu")  # options before nlu
    assert result.returncode == 0, result.stdout + result.stderr
    held_out = json.loads((out / "intent_report.json").read_text())["weighted avg"]["support"]
    assert 0.15 * examples <= held_out <= 0.3 * examples
    assert f"Trained on {examples - held_out} examples" in result.stdout

    out = tmp_path / "nlu-cv"
    result = chatbot("test", "nlu", "--project", str(bot), "--folds", "2", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    folds = json.loads((out / "cross_validation.json").read_text())
    assert folds["folds"] == 2 and len(folds["fold_summaries"]) == 2
    assert sum(f["examples"] for f in folds["fold_summaries"]) == examples
    # Rasa's spelling: --cross-validation, 5 folds unless -f says otherwise.
    result = chatbot("test", "nlu", "--project", str(bot), "--cross-validation", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((out / "cross_validation.json").read_text())["folds"] == 5


def test_python_dash_m_is_the_same_cli() -> None:
    result = chatbot("--help")
    assert result.returncode == 0
    for command in ("init", "train", "shell", "run", "test", "data"):
        assert command in result.stdout


def test_help_shows_no_range_for_unbounded_numbers() -> None:
    """click's help would show ``[x<=None]`` for a number without bounds."""
    result = chatbot("export", "--help")
    assert result.returncode == 0, result.stderr
    assert "None" not in result.stdout and "--minimum-timestamp NUMBER" in result.stdout
    assert "x>0" in result.stdout  # --timeout's bound is still shown


def broken_project(tmp_path: Path, file: str, text: str) -> Path:
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot)
    (bot / file).write_text(text)
    return bot


MOOD_DOMAIN = (DOMAINS / "moodbot" / "domain.yml").read_text()


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("domain.yml", "intents: [greet\n  - x: :\n", ["domain.yml:", "YAML"]),
        (
            "domain.yml",
            MOOD_DOMAIN + "\nslots:\n  mood:\n    type: colour\n    mappings: []\n",
            ["domain.yml:", "type", "colour", "text"],
        ),
        (
            "data/stories.yml",
            'version: "3.1"\nstories:\n- story: odd\n  steps:\n  - intent: teleport\n  - action: utter_fly\n',
            ["data/stories.yml:5", "teleport", "data/stories.yml:6", "utter_fly"],
        ),
        (
            "domain.yml",
            MOOD_DOMAIN + "\nforms:\n  name_form:\n    required_slots: [username]\n",
            ["domain.yml:", "username", "name_form"],
        ),
    ],
)
def test_bad_projects_give_a_clear_error_without_traceback(
    tmp_path: Path, file: str, text: str, expected: list[str]
) -> None:
    bot = broken_project(tmp_path, file, text)
    for args in (
        ("data", "validate", "--project", str(bot)),
        ("train", "--project", str(bot), "--quiet"),
    ):
        result = chatbot(*args)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        for part in expected:
            assert part in result.stderr, (part, result.stderr)
        # Every problem on a line of its own that says it is one.
        lines = [line for line in result.stderr.splitlines() if "data/stories.yml:" in line]
        assert all(line.startswith("error: ") for line in lines), result.stderr


MOOD_CONFIG = (DOMAINS / "moodbot" / "config.yml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    max_history: 5\n",
            "    learning_rate: -0.1\n",
            ["config.yml:27", "TEDPolicy", "-0.1"],
        ),
        (
            "- name: MemoizationPolicy\n",
            "- name: MemoizationPolicy\n    max_history: abc\n",
            ["config.yml:25", "'abc'"],
        ),
        (
            "    epochs: 100\n    constrain",
            "    drop_rate: 2\n    constrain",
            ["config.yml:16", "'drop_rate'"],
        ),
        ("threshold: 0.3", "threshold: 30", ["config.yml:20", "FallbackClassifier", "'threshold'"]),
    ],
)
def test_settings_out_of_range_stop_training_at_once_with_file_and_line(
    tmp_path: Path, old: str, new: str, expected: list[str]
) -> None:
    assert old in MOOD_CONFIG
    bot = broken_project(tmp_path, "config.yml", MOOD_CONFIG.replace(old, new, 1))
    result = chatbot("train", "--project", str(bot), "--quiet")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "NLU" not in result.stderr and "LSTMPolicy" not in result.stderr  # nothing trained
    for part in expected:
        assert part in result.stderr, (part, result.stderr)
    assert not (bot / "models").exists() or not any((bot / "models").iterdir())


def test_test_nlu_mistakes_are_clear_errors(tmp_path: Path) -> None:
    bot = broken_project(tmp_path, "data/extra.yml", 'version: "3.1"\n')
    result = chatbot("test", "nlu", "--project", str(bot), "--nlu", str(bot / "data" / "extra.yml"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "model" in result.stderr  # no trained model in the copy: says so
    result = chatbot("test", "nlu", "--project", str(bot), "--folds", "1")
    assert (
        result.returncode == 2 and "--folds" in result.stderr and "Traceback" not in result.stderr
    )


def test_missing_domain_and_missing_model(tmp_path: Path) -> None:
    result = chatbot("train", "--project", str(tmp_path), "--quiet")
    assert result.returncode == 1 and "domain" in result.stderr and "Traceback" not in result.stderr
    result = chatbot("shell", "--project", str(tmp_path))
    assert (
        result.returncode == 1
        and "chatbot train" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_validate_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    bot = broken_project(
        tmp_path,
        "data/stories.yml",
        'version: "3.1"\nstories:\n- story: a\n  steps:\n  - intent: nope_one\n  - action: utter_greet\n'
        "- story: b\n  steps:\n  - intent: greet\n  - action: utter_nope_two\n",
    )
    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 1
    assert "nope_one" in result.stderr and "utter_nope_two" in result.stderr


def test_export_and_import_conversations(tmp_path: Path) -> None:
    import asyncio

    from chatbot.store.factory import create_store

    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot)

    async def seed() -> None:
        async with create_store(
            None, default_sqlite_path=bot / ".chatbot" / "conversations.db"
        ) as store:
            await store.append(
                "ann", [{"event": "action", "name": "action_listen", "timestamp": 1.0}], start_seq=0
            )

    asyncio.run(seed())
    dump = tmp_path / "dump.jsonl"
    result = chatbot("export", "--project", str(bot), "--out", str(dump))
    assert result.returncode == 0, result.stderr
    assert json.loads(dump.read_text())["conversation_id"] == "ann"
    # An existing file is not replaced (a typo for data/nlu.yml), as `data convert --out`.
    exported = dump.read_text()
    for existing, text in ((dump, exported), (bot / "data" / "nlu.yml", None)):
        text = existing.read_text() if text is None else text
        result = chatbot("export", "--project", str(bot), "--out", str(existing))
        assert result.returncode == 1, result.stdout
        said = f"error: {existing} exists already; remove it or choose another --out"
        assert said in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert existing.read_text() == text

    other = tmp_path / "other"
    shutil.copytree(DOMAINS / "moodbot", other)
    result = chatbot("import", "--project", str(other), str(dump))
    assert result.returncode == 0 and "Imported 1 conversation(s), 1 event(s)" in result.stdout
    result = chatbot("import", "--project", str(other), str(dump))
    assert "already in the store" in result.stderr  # imported once, never overwritten
    # Into the store another endpoints file names, as export takes one (Rasa's --endpoints).
    elsewhere = tmp_path / "elsewhere.yml"
    elsewhere.write_text(f"tracker_store:\n  type: sql\n  db: {tmp_path / 'elsewhere.db'}\n")
    result = chatbot("import", "--project", str(other), "--endpoints", str(elsewhere), str(dump))
    assert result.returncode == 0 and "Imported 1 conversation(s)" in result.stdout, result.stderr
    assert (tmp_path / "elsewhere.db").is_file()
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    result = chatbot("import", "--project", str(other), str(tmp_path / "bad.jsonl"))
    assert (
        result.returncode == 1
        and "bad.jsonl:1" in result.stderr
        and "Traceback" not in result.stderr
    )


@pytest.mark.parametrize("project_first", [False, True])
def test_run_actions_serves_the_projects_actions_with_rasa_sdk(project_first: bool) -> None:
    """`chatbot run actions` (Rasa's `rasa run actions`): rasa-sdk's action server with the
    project's actions package, options it does not know passed on to it."""
    port = free_port()
    where = ["--project", str(DOMAINS / "restaurant")]
    args = ["run", *where, "actions"] if project_first else ["run", "actions", *where]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANIC_HOST": "127.0.0.1"}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: nobody reads it while it runs
        process = subprocess.Popen(
            [sys.executable, "-m", "chatbot", *args, "--port", str(port), "--cors", "*"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with its Sanic processes (stop_process)
        )
        try:
            deadline = time.monotonic() + 60
            actions, allowed = None, None
            while actions is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the action server did not start:\n{log.read().decode()}")
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/actions", headers={"Origin": "http://example.org"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=1.0) as response:
                        actions = json.loads(response.read())
                        allowed = response.headers.get("Access-Control-Allow-Origin")
                except (urllib.error.URLError, OSError):
                    time.sleep(0.2)
            assert {"name": "validate_restaurant_form"} in actions  # domains/restaurant/actions
            assert allowed in ("*", "http://example.org")  # --cors reached rasa-sdk
        finally:
            stop_process(process, grace=2.0)  # Sanic would wait out its connections for 20 s


def test_run_actions_without_an_actions_package_says_so(tmp_path: Path) -> None:
    result = chatbot("run", "actions", "--project", str(tmp_path))
    assert result.returncode == 1
    assert "--actions: no package or module 'actions'" in result.stderr
    assert "Traceback" not in result.stderr
    result = chatbot("run", "actions", "--project", str(tmp_path / "missing"))
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_train_and_validate_take_rasas_domain_data_config_and_out_options(
    tmp_path: Path,
) -> None:
    """A project laid out otherwise than Rasa's default (a domain file of another name, data in
    another folder, the config elsewhere), trained as `rasa train --domain --data --config --out
    models --fixed-model-name` trains it."""
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    (bot / "domain.yml").rename(bot / "mood-domain.yml")
    (bot / "data").rename(bot / "training-data")
    (tmp_path / "configs").mkdir()
    fast = (bot / "config.yml").read_text().replace("epochs: 100", "epochs: 3")
    (tmp_path / "configs" / "fast.yml").write_text(fast)
    (bot / "config.yml").unlink()
    files = (
        "--domain", str(bot / "mood-domain.yml"),
        "--data", str(bot / "training-data"),
        "--config", str(tmp_path / "configs" / "fast.yml"),
    )  # fmt: skip

    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 1 and "no domain found" in result.stderr
    result = chatbot("data", "validate", "--project", str(bot), *files)
    assert result.returncode == 0, result.stdout + result.stderr

    models = tmp_path / "models"
    models.mkdir()
    result = chatbot(
        "train", "--project", str(bot), *files, "--out", str(models),
        "--fixed-model-name", "mood", "--augmentation", "0", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in models.iterdir()) == ["mood.model"]
    result = chatbot(
        "test", "--model", str(models / "mood.model"), "--stories", str(bot / "tests"),
        "--out", str(tmp_path / "results"),
    )  # fmt: skip
    assert "Conversation accuracy" in result.stdout, result.stdout + result.stderr

    # --out ending in a slash is a folder too, made where missing; the model is named by time.
    result = chatbot("train", "--project", str(bot), *files, "--out", f"{tmp_path}/new/", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [p.suffix for p in (tmp_path / "new").iterdir()] == [".model"]

    for args, error in (
        (
            ("--out", str(tmp_path / "a.model"), "--fixed-model-name", "mood"),
            f"error: --fixed-model-name 'mood' with --out {tmp_path / 'a.model'}, a file: "
            "give --out a folder",
        ),
        (
            ("--fixed-model-name", "../mood"),
            "error: --fixed-model-name '../mood': a file name, without folders",
        ),
    ):
        result = chatbot("train", "--project", str(bot), *files, *args, "--quiet")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip() == error


def test_shell_debug_traces_each_turn_on_stderr(tmp_path: Path) -> None:
    from tests.helpers import dialogue_model

    model = tmp_path / "mood.model"
    dialogue_model("moodbot").to_file(model)
    bot = str(DOMAINS / "moodbot")
    quiet = chatbot("shell", "--project", bot, "--model", str(model), stdin="/greet\n/stop\n")
    assert quiet.returncode == 0, quiet.stderr
    assert "How are you" in quiet.stdout and "user said" not in quiet.stderr
    for flags in (("shell", "--debug"), ("-v", "shell")):
        args = (*flags, "--conversation-id", "shell", "--project", bot, "--model", str(model))
        result = chatbot(*args, stdin="/greet\n/stop\n")
        assert result.returncode == 0, result.stderr
        assert (
            "DEBUG chatbot.processor: conversation shell: user said '/greet': intent greet (1.00)"
            in result.stderr
        )
        assert "conversation shell: next action utter_greet (" in result.stderr
        # The greeting is one of the response's variations.
        assert "conversation shell: utter_greet ended with [bot '" in result.stderr


def test_chatbot_test_on_the_training_data_tests_its_stories_not_its_rules(
    tmp_path: Path,
) -> None:
    """As Rasa's ``rasa test --stories data``: a rule's condition is no part of a story, so
    rules are left out (one line says so) instead of failing as stories (rasa-3.x-form-examples'
    "Submit form" rule, whose condition is an active form)."""
    files = {
        "domain.yml": (
            "intents: [greet, bye]\nslots:\n  vip:\n    type: bool\n    mappings: []\n"
            "responses:\n  utter_hi:\n  - text: hi\n  utter_bye:\n  - text: bye\n"
            "  utter_vip_bye:\n  - text: goodbye, dear guest\n"
        ),
        "data/stories.yml": (
            "stories:\n- story: hello and bye\n  steps:\n  - intent: greet\n"
            "  - action: utter_hi\n  - intent: bye\n  - action: utter_bye\n"
        ),
        "data/rules.yml": (
            "rules:\n- rule: a guest's goodbye\n  condition:\n  - slot_was_set:\n"
            "    - vip: true\n  steps:\n  - intent: bye\n  - action: utter_vip_bye\n"
            "- rule: bye\n  steps:\n  - intent: bye\n  - action: utter_bye\n"
        ),
        "config.yml": "policies:\n  - name: RulePolicy\n  - name: MemoizationPolicy\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    model = tmp_path / "m.model"
    assert chatbot("train", "--out", str(model), cwd=tmp_path).returncode == 0
    result = chatbot("test", "--model", str(model), "--stories", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule(s) left out" in result.stdout


def test_train_nlu_and_train_core_train_one_part(tmp_path: Path) -> None:
    """Rasa's `rasa train nlu` / `rasa train core`: a model of one part each."""
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    config = (bot / "config.yml").read_text().replace("epochs: 100", "epochs: 3")
    (bot / "config.yml").write_text(config)

    nlu = tmp_path / "nlu.model"
    result = chatbot("train", "nlu", "--project", str(bot), "--out", str(nlu), "--quiet")
    assert result.returncode == 0, result.stderr
    result = chatbot("shell", "nlu", "--project", str(bot), "-m", str(nlu), stdin="hello\n/stop\n")
    assert result.returncode == 0 and '"name": "greet"' in result.stdout, result.stderr
    result = chatbot("shell", "--project", str(bot), "-m", str(nlu), stdin="hello\n/stop\n")
    assert result.returncode == 0, result.stderr
    assert "has no dialogue policies" in result.stdout
    assert result.stdout.rstrip().endswith("Your input -> Your input ->")  # no answer

    core = tmp_path / "core.model"  # options before the subcommand hold for it
    result = chatbot("train", "--project", str(bot), "--out", str(core), "core", "--quiet")
    assert result.returncode == 0, result.stderr
    result = chatbot("shell", "--project", str(bot), "-m", str(core), stdin="/greet\n/stop\n")
    greetings = ("Hey! How are you?", "Hi there! How are you feeling today?")  # utter_greet's
    assert result.returncode == 0 and any(g in result.stdout for g in greetings), result.stderr

    from chatbot.agent import TrainedModel

    nlu_only, core_only = TrainedModel.from_file(nlu), TrainedModel.from_file(core)
    assert (nlu_only.meta["parts"], core_only.meta["parts"]) == (["nlu"], ["core"])
    assert nlu_only.nlu is not None and not nlu_only.policies
    assert core_only.nlu is None and core_only.policies


def test_rasas_init_and_short_domain_option(tmp_path: Path) -> None:
    """`rasa init --no-prompt` (in the current folder, trained at once) and `-d DOMAIN`, as
    Rasa tutorials type them (both were "No such option")."""
    result = chatbot("init", "--no-prompt", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The folder by its name, not "Created a starter bot in .."
    assert f"Created a starter bot in {tmp_path.resolve()}\n" in result.stdout, result.stdout
    assert (tmp_path / "domain.yml").is_file() and len(
        list((tmp_path / "models").glob("*.model"))
    ) == 1
    assert chatbot("init", "--init-dir", str(tmp_path)).returncode == 1  # not empty: refused
    result = chatbot("data", "validate", "-d", "domain.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_command_line_imports_no_server_or_torch_until_a_command_needs_them() -> None:
    """`chatbot train`, `data validate`, `--help`, ... start without aiohttp, SQLAlchemy (the
    server's stack: about a second of imports) and torch; `chatbot.server`'s names still load
    when asked for."""
    probe = (
        "import sys, chatbot.cli;"
        "print(sorted(m for m in ('aiohttp', 'sqlalchemy', 'torch', 'chatbot.server.app')"
        " if m in sys.modules));"
        "from chatbot.server import create_app;"
        "print(create_app.__module__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "chatbot.server.app"]
