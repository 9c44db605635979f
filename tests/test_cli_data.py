"""``chatbot data`` as a user runs it: validate (its checks and warnings, stories that
contradict each other), split."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chatbot.cli_data import endpoint_problems
from chatbot.project.loader import check_project
from chatbot.project.nlu_reader import read_nlu
from tests.helpers import DOMAINS, ROOT
from tests.test_cli import chatbot


def test_data_split_nlu_keeps_every_example_once(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    assert chatbot("init", str(bot)).returncode == 0
    out = tmp_path / "split"
    result = chatbot("data", "split", "nlu", "--project", str(bot), "--out", str(out))
    assert result.returncode == 0, result.stderr
    original = read_nlu(bot / "data" / "nlu.yml").examples
    train = read_nlu(out / "training_data.yml").examples
    test = read_nlu(out / "test_data.yml").examples
    key = lambda e: (e.text, e.intent, e.entities)  # noqa: E731
    assert sorted(map(key, train + test)) == sorted(map(key, original))
    assert 0.1 * len(original) <= len(test) <= 0.3 * len(original)
    many = {e.intent for e in original if sum(o.intent == e.intent for o in original) > 1}
    assert {e.intent for e in test} == many  # every intent with two or more is tested
    assert f"{len(train)} training and {len(test)} test examples" in result.stdout
    result = chatbot("data", "split", "nlu", "--project", str(bot), "--training-fraction", "1.5")
    assert result.returncode == 2 and "training-fraction" in result.stderr


def test_data_split_nlu_writes_the_retrieval_intents_responses_with_their_examples(
    tmp_path: Path,
) -> None:
    """As Rasa's split (rasa-demo keeps its FAQ answers in data files): each file holds the
    responses of the retrieval intents whose examples it holds."""
    bot = tmp_path / "bot"
    assert chatbot("init", str(bot)).returncode == 0
    faq = "".join(f"    - question {i} about bots\n" for i in range(10))
    (bot / "data" / "faq.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: faq/ask_bot\n  examples: |\n'
        + faq
        + "responses:\n  utter_faq/ask_bot:\n  - text: I am a bot.\n"
    )
    domain = (bot / "domain.yml").read_text().replace("intents:\n", "intents:\n  - faq\n", 1)
    (bot / "domain.yml").write_text(domain)
    for args in ((), ("--nlu", str(bot / "data"))):
        out = tmp_path / f"split{len(args)}"
        result = chatbot("data", "split", "nlu", "--project", str(bot), *args, "--out", str(out))
        assert result.returncode == 0, result.stderr
        for name in ("training_data.yml", "test_data.yml"):
            written = yaml.safe_load((out / name).read_text())
            assert written["responses"] == {"utter_faq/ask_bot": [{"text": "I am a bot."}]}
            assert "utter_greet" not in written["responses"]  # the domain's stay there


CONFLICTING = {
    "domain.yml": (
        "intents: [greet, bye]\nresponses:\n  utter_hi:\n  - text: hi\n"
        "  utter_hello:\n  - text: hello\n  utter_bye:\n  - text: bye\n"
    ),
    # After "greet" alone, 'one' says hi and 'two' hello; their whole histories differ.
    "data/stories.yml": (
        "stories:\n"
        "- story: one\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
        "- story: two\n  steps:\n  - intent: bye\n  - action: utter_bye\n"
        "  - intent: greet\n  - action: utter_hello\n"
    ),
}


@pytest.mark.parametrize(
    ("config", "flags", "conflict"),
    [
        ("policies: [{name: TEDPolicy}]\n", (), None),
        ("policies: [{name: TEDPolicy}]\n", ("--max-history", "1"), "last 1 state,"),
        ("policies: [{name: MemoizationPolicy, max_history: 1}]\n", (), "last 1 state,"),
    ],
)
def test_data_validate_finds_stories_that_contradict_each_other(
    tmp_path: Path, config: str, flags: tuple[str, ...], conflict: str | None
) -> None:
    """Rasa's story structure check: with the config's smallest max_history, or --max-history."""
    for name, text in {**CONFLICTING, "config.yml": config}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = chatbot("data", "validate", *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # warnings, as in Rasa
    if conflict is None:
        assert "contradict" not in result.stderr
        return
    assert (
        "stories 'one' (data/stories.yml:2) and 'two' (data/stories.yml:6) contradict each "
        f"other: after the same {conflict} one continues with 'utter_hi' and the other with "
        "'utter_hello'"
    ) in result.stderr
    assert "no problems found (2 warning(s))" in result.stdout  # and: no RulePolicy
    result = chatbot("data", "validate", *flags, "--fail-on-warnings", cwd=tmp_path)
    assert result.returncode == 1 and "contradict each other" in result.stderr


def test_stories_that_start_with_different_bot_actions_do_not_contradict(tmp_path: Path) -> None:
    """As Rasa's check (a conflict needs prior events): stories may open with any action
    (financial-demo's "say ok when user affirms after utter_help" and its siblings); the same
    user message then answered two ways still contradicts, at validation and in training."""
    stories = (
        "stories:\n"
        "- story: opens with hi\n  steps:\n  - action: utter_hi\n  - intent: bye\n"
        "  - action: utter_bye\n"
        "- story: opens with hello\n  steps:\n  - action: utter_hello\n  - intent: bye\n"
        "  - action: utter_bye\n"
    )
    files = {**CONFLICTING, "data/stories.yml": stories, "config.yml": "policies:\n"}
    files["config.yml"] += "  - name: MemoizationPolicy\n  - name: TEDPolicy\n    epochs: 1\n"
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for args in (("data", "validate"), ("train", "--out", str(tmp_path / "m.model"))):
        result = chatbot(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "contradict" not in result.stderr
    (tmp_path / "data/stories.yml").write_text(
        stories.replace(
            "  - intent: bye\n  - action: utter_bye\n", "  - intent: bye\n  - action: utter_hi\n", 1
        )
    )
    result = chatbot("data", "validate", "--max-history", "1", cwd=tmp_path)
    assert result.returncode == 0 and "contradict" in result.stderr


def test_data_validate_names_what_no_story_or_rule_uses(tmp_path: Path) -> None:
    """As Rasa's validator (warnings, not errors), without its noise: an intent a slot mapping
    reads, a response a form asks with or a custom action names in its code is used."""
    files = {
        "domain.yml": (
            "intents: [greet, bye, shout, choose]\n"
            "slots:\n  loud:\n    type: bool\n    mappings:\n"
            "    - {type: from_intent, intent: shout, value: true}\n"
            "  colour:\n    type: text\n    mappings: [{type: from_text}]\n"
            "forms:\n  colour_form:\n    required_slots: [colour]\n"
            "actions: [action_wave]\n"
            "responses:\n  utter_hi:\n  - text: hi\n  utter_bye:\n  - text: bye\n"
            "  utter_ask_colour:\n  - text: which colour?\n  utter_wave:\n  - text: (waves)\n"
            "  utter_forgotten:\n  - text: nobody says this\n"
        ),
        "data/stories.yml": (
            "stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
            "  - intent: choose\n  - action: colour_form\n  - active_loop: colour_form\n"
        ),
        "actions/__init__.py": "",
        "actions/wave.py": "RESPONSE = 'utter_wave'  # dispatcher.utter_message(response=...)\n",
        "endpoints.yml": "action_endpoint:\n  actions_module: actions\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = chatbot("data", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    unused = [line for line in result.stderr.splitlines() if "not used in any" in line]
    assert len(unused) == 3, unused
    assert any("domain.yml:1: intent 'bye' is not used in any story or rule" in u for u in unused)
    assert any("response 'utter_bye' is not used" in u for u in unused)
    assert any("response 'utter_forgotten' is not used" in u for u in unused)
    result = chatbot("data", "validate", "--fail-on-warnings", cwd=tmp_path)
    assert result.returncode == 1


def test_data_validate_checks_the_pipelines_settings(tmp_path: Path) -> None:
    for name, text in CONFLICTING.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "config.yml").write_text(
        "pipeline:\n- name: DucklingEntityExtractor\n  url: localhost:8000\n"
    )
    result = chatbot("data", "validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "config.yml:2: DucklingEntityExtractor: url must be an http(s) URL" in result.stderr


def test_data_split_stories_holds_out_stories_of_each_file(tmp_path: Path) -> None:
    """Rasa's `rasa data split stories`: train_<file> keeps the rest of the file, test_<file>
    the held-out stories; YAML 1.2 text (`yes`) stays text."""
    data = tmp_path / "data"
    data.mkdir()
    stories = "".join(
        f"- story: s{i}\n  steps:\n  - intent: greet\n  - slot_was_set:\n    - ok: yes\n"
        f"  - action: utter_greet\n"
        for i in range(10)
    )
    (data / "stories.yml").write_text(
        'version: "3.1"\nstories:\n' + stories
        + "rules:\n- rule: r\n  steps:\n  - intent: bye\n  - action: utter_bye\n"
    )  # fmt: skip
    (data / "nlu.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    out = tmp_path / "split"
    args = ("data", "split", "stories", "--project", str(tmp_path), "--out", str(out))
    result = chatbot(*args, "--training-fraction", "0.7")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["test_stories.yml", "train_stories.yml"]
    train = yaml.safe_load((out / "train_stories.yml").read_text())
    test = yaml.safe_load((out / "test_stories.yml").read_text())
    assert len(train["stories"]) == 7 and len(test["stories"]) == 3
    assert train["rules"][0]["rule"] == "r" and "rules" not in test
    names = [s["story"] for s in train["stories"] + test["stories"]]
    assert sorted(names) == sorted(f"s{i}" for i in range(10))
    assert test["stories"][0]["steps"][1] == {"slot_was_set": [{"ok": "yes"}]}
    # The held-out file is test stories as `chatbot test` reads them.
    from chatbot.project.story_reader import read_stories

    read, _ = read_stories(out / "test_stories.yml", test=True)
    assert len(read) == 3
    # The same seed, the same split; another seed, another.
    first = (out / "test_stories.yml").read_text()
    assert chatbot(*args, "--training-fraction", "0.7").returncode == 0
    assert (out / "test_stories.yml").read_text() == first
    assert chatbot(*args, "--training-fraction", "0.7", "--random-seed", "7").returncode == 0
    assert (out / "test_stories.yml").read_text() != first

    (data / "stories.yml").write_text("stories: []\n")
    result = chatbot(*args)
    assert result.returncode == 1 and "no stories in" in result.stderr


def test_data_validate_fails_on_warnings_when_asked(tmp_path: Path) -> None:
    """Rasa's `rasa data validate --fail-on-warnings`: what trains but looks like a mistake (an
    NLU intent the domain lacks) fails the check too."""
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    result = chatbot("data", "validate", "--project", str(bot), "--fail-on-warnings")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout and "warning(s)" not in result.stdout
    with (bot / "data" / "nlu.yml").open("a") as file:
        file.write("- intent: ask_time\n  examples: |\n    - what time is it\n")
    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 0 and "no problems found (1 warning(s))" in result.stdout
    result = chatbot("data", "validate", "--project", str(bot), "--fail-on-warnings")
    assert result.returncode == 1
    assert "intent 'ask_time' of an NLU example is not in the domain" in result.stderr
    assert "0 problem(s) and 1 warning(s) found" in result.stderr


# endpoints.yml and credentials.yml: what would stop `chatbot run` (F9 of the files probe).
RUN_STOPPERS = [
    (
        "endpoints.yml",
        "tracker_store:\n  type: nosuchstore\n",
        "endpoints.yml:1: tracker_store: unknown store type (key 'type', value 'nosuchstore')",
    ),
    (
        "endpoints.yml",
        "lock_store:\n  type: zookeeper\n",
        "endpoints.yml:1: lock_store: unknown lock store type (key 'type', value 'zookeeper')",
    ),
    (
        "endpoints.yml",
        "tracker_store:\n  type: redis\n  url: 127.0.0.1\n  port: abc\n",
        "endpoints.yml:1: tracker_store: port must be a positive number (key 'port', value 'abc')",
    ),
    (
        "endpoints.yml",
        "action_endpoint:\n  url: 5055\n",
        "endpoints.yml:1: action_endpoint needs 'url' (an action server, http:// or https://)",
    ),
    ("endpoints.yml", "nlg:\n  url: 12\n", "endpoints.yml:1: nlg needs 'url'"),
    # URLs the URL parser refuses (it raised ValueError: a traceback in `run`, a 500 from
    # /health for the action server's)
    (
        "endpoints.yml",
        "action_endpoint:\n  url: 'http://[::1/webhook'\n",
        "endpoints.yml:1: action_endpoint: 'url' 'http://[::1/webhook' is not a valid URL",
    ),
    (
        "endpoints.yml",
        "action_endpoint:\n  url: 'http://localhost:99999/webhook'\n",
        "endpoints.yml:1: action_endpoint: 'url' 'http://localhost:99999/webhook' is not a valid",
    ),
    (
        "endpoints.yml",
        "nlg:\n  url: 'http:///nlg'\n",
        "endpoints.yml:1: nlg: 'url' 'http:///nlg' names no host",
    ),
    (
        "endpoints.yml",
        "models:\n  url: 'http://[::1/models'\n",
        "endpoints.yml:1: models: 'url' 'http://[::1/models' is not a valid URL",
    ),
    (
        "endpoints.yml",
        "event_broker:\n  type: pika\n  url: 'amqp://u:secret@[::1'\n",
        "endpoints.yml:1: event_broker: 'url' is not a valid URL",
    ),
    (
        "endpoints.yml",
        "event_broker:\n  type: pika\n  url: 'rabbit:99999'\n",
        "endpoints.yml:1: event_broker: 'rabbit:99999' is not a host name (a port goes in 'port')",
    ),
    # numbers no float holds (were OverflowErrors)
    (
        "endpoints.yml",
        "action_endpoint:\n  url: http://localhost:5055/webhook\n  timeout: 1" + "0" * 400 + "\n",
        "endpoints.yml:1: action_endpoint: 'timeout' must be a positive number, not 1000",
    ),
    (
        "endpoints.yml",
        "nlg:\n  url: http://localhost:5056/nlg\n  timeout: 1" + "0" * 400 + "\n",
        "endpoints.yml:1: nlg: 'timeout' must be a positive number, not 1000",
    ),
    (
        "endpoints.yml",
        "models:\n  url: http://localhost:8080/m\n  wait_time_between_pulls: 1" + "0" * 400 + "\n",
        "endpoints.yml:1: models: 'wait_time_between_pulls' must be a number of seconds >= 0",
    ),
    (
        "credentials.yml",
        "callback:\n  url: 'http://[::1/bot'\n",
        "credentials.yml:1: callback: 'url' 'http://[::1/bot' is not a valid URL",
    ),
    (  # a URL SQLAlchemy cannot parse: `run` stops with a traceback here
        "endpoints.yml",
        'tracker_store:\n  type: sql\n  url: "postgresql://u:p@db:notaport/bot"\n',
        "endpoints.yml:1: tracker_store: not a database URL: 'postgresql://u:***@db:notaport/bot'",
    ),
    (
        "credentials.yml",
        "nosuchchannel:\n  key: x\n",
        "credentials.yml:1: unknown channel 'nosuchchannel' in the credentials; known channels:",
    ),
    (
        "credentials.yml",
        "telegram:\n  verify: mybot\n",
        "credentials.yml:1: telegram: 'access_token' is required",
    ),
]


def _moodbot(tmp_path: Path) -> Path:
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    for name in ("endpoints.yml", "credentials.yml"):
        (bot / name).unlink(missing_ok=True)
    return bot


@pytest.mark.parametrize(("name", "text", "problem"), RUN_STOPPERS)
def test_data_validate_reports_what_would_stop_chatbot_run(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    bot = _moodbot(tmp_path)
    (bot / name).write_text(text)
    project, problems = check_project(bot)
    assert project is not None and problems == []  # their shape is right: the loader is content
    found = [str(p) for p in endpoint_problems(project)]
    assert len(found) == 1 and found[0].startswith(f"{bot}/{problem}"), found


def test_data_validate_passes_over_what_only_the_running_bot_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset ${VAR} stops `run` only (a warning here, from the loader); the actions module
    is not imported (its code runs with the bot); a kafka broker is one warning line in `run`."""
    monkeypatch.delenv("NO_SUCH_ACTION_URL", raising=False)
    bot = _moodbot(tmp_path)
    (bot / "endpoints.yml").write_text(
        "action_endpoint:\n  url: ${NO_SUCH_ACTION_URL}\nevent_broker:\n  type: kafka\n"
    )
    project, problems = check_project(bot)
    assert project is not None and problems == []
    assert endpoint_problems(project) == []
    (bot / "endpoints.yml").write_text("action_endpoint:\n  actions_module: not_there\n")
    project, _ = check_project(bot)
    assert endpoint_problems(project) == []


def test_data_validate_fails_on_endpoints_that_would_stop_the_bot(tmp_path: Path) -> None:
    """As a user runs it; a block we do not serve (a kafka broker: a warning in `run` too)
    does not fail --fail-on-warnings, which Rasa's validator, reading neither file, passes."""
    bot = _moodbot(tmp_path)
    (bot / "endpoints.yml").write_text("event_broker:\n  type: kafka\n")
    result = chatbot("data", "validate", "--project", str(bot), "--fail-on-warnings")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "event_broker: type 'kafka' is not provided" in result.stderr
    (bot / "credentials.yml").write_text("telegram:\n  verify: mybot\n")
    result = chatbot("data", "validate", "--project", str(bot))
    assert result.returncode == 1
    assert (
        f"error: {bot / 'credentials.yml'}:1: telegram: 'access_token' is required" in result.stderr
    )


def test_data_validate_does_not_load_torch() -> None:
    """Validating is reading YAML and replaying stories: the network library (2 s of a process's
    start on a small machine) is not imported for it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatbot",
            "data",
            "validate",
            "--project",
            str(DOMAINS / "restaurant"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "training.replay" in imported  # the stories were replayed for contradictions
    assert [m for m in imported if m.split(".")[0] == "torch"] == []
