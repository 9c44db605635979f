"""Repeated warnings and errors are written a few times a period, then counted."""

from __future__ import annotations

import logging
import subprocess
import sys

from chatbot.log_lines import RepeatedLines


def record(text: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("chatbot.processor", level, __file__, 1, text, args or None, None)


def test_lines_of_a_kind_pass_a_few_times_a_period_then_say_how_many_were_left_out() -> None:
    now = [0.0]
    lines = RepeatedLines(per_period=2, period=10.0, clock=lambda: now[0])
    disk_full = "POST /webhooks/rest/webhook: conversation store unavailable: disk is full"
    passed = [lines.filter(record(disk_full)) for _ in range(50)]
    assert passed == [True, True] + [False] * 48
    # Lines of the same kind: only the conversation and the numbers differ.
    failed = "conversation %s: the action server failed %d times in a row"
    assert [lines.filter(record(failed, f"c{n}", n)) for n in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    # Another kind, or a line below WARNING, is not held back.
    assert lines.filter(record("conversation x: something else")) is True
    assert all(lines.filter(record(disk_full, level=logging.INFO)) for _ in range(5))
    now[0] = 10.0
    summary = record(disk_full)
    assert lines.filter(summary) is True
    assert summary.getMessage() == f"{disk_full} (48 more like this were not logged)"
    assert lines.filter(record(disk_full)) is True
    assert lines.filter(record(disk_full)) is False


def test_it_remembers_a_bounded_number_of_kinds() -> None:
    lines = RepeatedLines(per_period=1, kinds=3)
    for n in range(10):
        assert lines.filter(record(f"kind {chr(97 + n)}")) is True
    assert len(lines._seen) == 3


def test_the_commands_log_holds_repeated_lines_back() -> None:
    code = (
        "import logging\n"
        "from chatbot.log_setup import configure_logging\n"
        "configure_logging(logging.INFO)\n"
        "for n in range(50):\n"
        "    logging.getLogger('chatbot.processor').error('conversation c%d: store away', n)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.splitlines() == [f"conversation c{n}: store away" for n in range(5)]
