"""Repeated warnings and errors written once in a while, not once per message.

While a dependency is away (a full disk, the action server down), every message gets the same
line: thousands in a few seconds (20,619 in 25 s for a full disk), which bury everything else and
fill the disk that was already full. ``RepeatedLines`` passes the first few lines of a kind in each
period and counts the rest; the next line of that kind after the period says how many were left
out. Lines of a kind are those of one logger and level whose text is the same but for the
conversation it names and its numbers.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

# A conversation named in a line ("conversation 7f3a...: ..."), and numbers (counts, seconds).
_CONVERSATION = re.compile(r"conversation \S+")
_NUMBER = re.compile(r"\d+(\.\d+)?")


class RepeatedLines(logging.Filter):
    """Lets ``per_period`` lines of a kind (WARNING and up) through every ``period`` seconds."""

    def __init__(
        self,
        per_period: int = 5,
        period: float = 10.0,
        *,
        kinds: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.per_period = per_period
        self.period = period
        self.kinds = kinds  # kinds remembered, least recently seen forgotten first
        self.clock = clock
        # kind -> [the period's start, lines passed in it, lines left out since the last passed]
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: let the handler report it
            return True
        kind = (record.name, record.levelno, _NUMBER.sub("#", _CONVERSATION.sub("", text)))
        now = self.clock()
        seen = self._seen.pop(kind, None)
        if seen is None or now - seen[0] >= self.period:
            left_out = int(seen[2]) if seen is not None else 0
            seen = [now, 0.0, 0.0]
            if left_out:
                record.msg = f"{text} ({left_out} more like this were not logged)"
                record.args = None
        self._seen[kind] = seen
        while len(self._seen) > self.kinds:
            self._seen.popitem(last=False)
        if seen[1] >= self.per_period:
            seen[2] += 1
            return False
        seen[1] += 1
        return True
