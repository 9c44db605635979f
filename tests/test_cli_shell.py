"""``chatbot shell`` as a user runs it: at a terminal (line editing), with buttons, with another
endpoints file."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.test_cli import chatbot


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_the_shell_in_a_terminal_recalls_earlier_input_with_the_up_arrow(tmp_path: Path) -> None:
    """At a terminal, `chatbot shell` edits lines and keeps their history (readline): the up
    arrow brings back the last message, which the bot answers again."""
    import pty
    import select
    import signal

    from tests.helpers import RULES_ONLY, train_files

    bot = tmp_path / "bot"
    train_files(
        bot,
        {
            "domain.yml": "intents: [greet]\nresponses:\n  utter_greet:\n    - text: Hello there!\n",
            "data/rules.yml": "rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_greet\n",
            "config.yml": RULES_ONLY,
        },
    ).to_file(tmp_path / "bot.model")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell, on the terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(
            sys.executable,
            [sys.executable, "-m", "chatbot", "shell", "--project", str(bot), "-m",
             str(tmp_path / "bot.model")],
        )  # fmt: skip
    seen = b""

    def read_until(wanted: bytes, count: int) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while seen.count(wanted) < count:
            left = deadline - time.monotonic()
            assert left > 0, seen.decode(errors="replace")
            if select.select([fd], [], [], left)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:  # the child is gone
                    break

    try:
        read_until(b"Your input -> ", 1)
        os.write(fd, b"/greet\r")
        read_until(b"Hello there!", 1)
        read_until(b"Your input -> ", 2)
        os.write(fd, b"\x1b[A\r")  # the up arrow, then enter
        read_until(b"Hello there!", 2)
        os.write(fd, b"/stop\r")
        read_until(b"\x00never", 1)  # until the shell ends and closes the terminal
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:  # a failed check: the shell still waits for input
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert seen.count(b"Hello there!") == 2
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_shell_sends_a_buttons_payload_for_its_number(tmp_path: Path) -> None:
    """As choosing a button in Rasa's shell: after a message with buttons, typing a button's
    number sends its payload; other text, and numbers without buttons, are sent as typed."""
    from tests.helpers import RULES_ONLY, train_files

    bot = tmp_path / "bot"
    train_files(
        bot,
        {
            "domain.yml": (
                "intents: [greet, affirm, deny]\nresponses:\n"
                "  utter_greet:\n    - text: Coffee?\n      buttons:\n"
                "      - {title: Yes please, payload: /affirm}\n"
                "      - {title: No thanks, payload: /deny}\n"
                "  utter_yes:\n    - text: Here you are.\n"
                "  utter_no:\n    - text: Maybe later.\n"
            ),
            "data/rules.yml": (
                "rules:\n"
                "- rule: g\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
                "- rule: y\n  steps:\n  - intent: affirm\n  - action: utter_yes\n"
                "- rule: n\n  steps:\n  - intent: deny\n  - action: utter_no\n"
            ),
            "config.yml": RULES_ONLY,
        },
    ).to_file(tmp_path / "bot.model")
    result = chatbot(
        "shell", "--project", str(bot), "-m", str(tmp_path / "bot.model"),
        stdin="/greet\n2\n/greet\n1\n1\n/stop\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1: Yes please (/affirm)" in out and "(No thanks: /deny)" in out
    assert out.index("Maybe later.") < out.index("(Yes please: /affirm)") < out.index("Here you")
    assert out.count("(Yes please: /affirm)") == 1  # the second 1: no buttons then, sent as "1"


def test_shell_takes_another_endpoints_file(tmp_path: Path) -> None:
    """Rasa's `rasa shell --endpoints FILE`: the action server it names, not the project's."""
    from tests.helpers import RULES_ONLY, train_files

    bot = tmp_path / "bot"
    train_files(
        bot,
        {
            "domain.yml": "intents: [greet]\nactions: [action_hello]\n",
            "data/rules.yml": "rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: action_hello\n",
            "config.yml": RULES_ONLY,
            "actions/__init__.py": "",
            "actions/hello.py": (
                "from rasa_sdk import Action\n\n\nclass Hello(Action):\n"
                "    def name(self):\n        return 'action_hello'\n\n"
                "    def run(self, dispatcher, tracker, domain):\n"
                "        dispatcher.utter_message(text='Hello from the action')\n        return []\n"
            ),
        },
    ).to_file(tmp_path / "bot.model")
    (tmp_path / "other.yml").write_text("action_endpoint:\n  actions_module: actions\n")
    args = ("shell", "--project", str(bot), "-m", str(tmp_path / "bot.model"))
    result = chatbot(*args, stdin="/greet\n/stop\n")  # the project has no endpoints.yml
    assert result.returncode == 0 and "Hello from the action" not in result.stdout
    result = chatbot(*args, "--endpoints", str(tmp_path / "other.yml"), stdin="/greet\n/stop\n")
    assert result.returncode == 0, result.stderr
    assert "Hello from the action" in result.stdout
    result = chatbot(*args, "--endpoints", str(tmp_path / "missing.yml"), stdin="/stop\n")
    assert result.returncode == 2 and "missing.yml" in result.stderr


def test_the_shell_keeps_the_conversation_in_the_tracker_store_and_takes_rasas_options(
    tmp_path: Path,
) -> None:
    """As `rasa shell`: the conversation goes where endpoints.yml's tracker_store says, and a
    Rasa shell command line (its server options) runs, each server option saying in one line
    that it changes nothing here; the log options log."""
    import asyncio

    from chatbot.store import SQLStore
    from tests.helpers import RULES_ONLY, train_files

    bot = tmp_path / "bot"
    train_files(
        bot,
        {
            "domain.yml": "intents: [greet]\nresponses:\n  utter_greet:\n    - text: Hello!\n",
            "data/rules.yml": "rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_greet\n",
            "config.yml": RULES_ONLY,
        },
    ).to_file(tmp_path / "bot.model")
    (bot / "endpoints.yml").write_text("tracker_store:\n  type: sql\n  db: kept.db\n")
    result = chatbot(
        "shell", "--project", str(bot), "-m", str(tmp_path / "bot.model"),
        "--conversation-id", "ann", "--port", "5006", "--cors", "a", "b", "--enable-api",
        "--log-file", str(tmp_path / "shell.log"), "--debug",
        stdin="/greet\n/stop\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Hello!" in result.stdout
    for option in ("--port", "--cors", "--enable-api"):
        assert f"{option}: no effect here" in result.stderr
    assert "--log-file" not in result.stderr and (tmp_path / "shell.log").stat().st_size > 0

    async def stored() -> list[str]:
        async with SQLStore(f"sqlite:///{bot / 'kept.db'}") as store:
            events = (await store.load("ann")).events
        return [e.get("text") for e in events if e["event"] in ("user", "bot")]

    assert asyncio.run(stored()) == ["/greet", "Hello!"]
    # Without --conversation-id, each run is a conversation of its own (Rasa's new uuid).
    for _ in range(2):
        args = ("shell", "--project", str(bot), "-m", str(tmp_path / "bot.model"))
        assert chatbot(*args, stdin="/greet\n/stop\n").returncode == 0

    async def ids() -> list[str]:
        async with SQLStore(f"sqlite:///{bot / 'kept.db'}") as store:
            return await store.conversation_ids()

    new = [i for i in asyncio.run(ids()) if i != "ann"]
    assert len(new) == 2 and all(len(i) == 32 for i in new), new
    # A store that cannot be reached (carbon-bot's endpoints.yml names its author's disk): the
    # conversation is kept in memory, as Rasa's shell (FailSafeTrackerStore) does.
    away = tmp_path / "no-such-folder" / "kept.db"
    (bot / "endpoints.yml").write_text(f"tracker_store:\n  type: sql\n  db: {away}\n")
    result = chatbot(*args, stdin="/greet\n/greet\n/stop\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Hello!") == 2
    assert f"conversation store unavailable (sqlite at {away})" in result.stderr
    assert "this conversation is kept in memory" in result.stderr and not away.parent.exists()


def test_the_shell_leaves_out_rasa_sdks_line_per_registered_action(tmp_path: Path) -> None:
    """Rasa's shell shows no such lines (its action server prints them, in a process of its
    own); the in-process actions' registry said one line per action before the first prompt."""
    from tests.helpers import DOMAINS, dialogue_model

    dialogue_model("restaurant").to_file(tmp_path / "restaurant.model")
    args = (
        "shell",
        "--project",
        str(DOMAINS / "restaurant"),
        "-m",
        str(tmp_path / "restaurant.model"),
    )
    result = chatbot(*args, stdin="/request_restaurant\n/stop\n")
    assert result.returncode == 0, result.stderr
    assert "What cuisine would you like?" in result.stdout
    assert "Registered function" not in result.stderr + result.stdout
    debug = chatbot(*args, "--debug", stdin="/stop\n")
    assert "Registered function for 'validate_restaurant_form'" in debug.stderr


def test_a_number_in_other_digits_is_sent_as_typed() -> None:
    """ "²" is a digit to ``str.isdigit`` but no number to ``int``: the shell's button choice
    sent it as typed instead of dying on a ValueError; so does a number of 5,000 digits."""
    from chatbot.cli_shell import _button_payload

    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    assert _button_payload("2", buttons) == "/deny"
    for text in ("\u00b2", "\u0662", "9" * 5000):
        assert _button_payload(text, buttons) == text
