"""Reading bAbI dialog files (Bordes et al. 2017): ``N user<TAB>bot`` turns, N restarting at 1 for
each dialog; ``<SILENCE>`` is a turn without user words; lines without a tab are knowledge-base
results (``N item attribute value``), which are context, not targets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SILENCE = "<SILENCE>"
REPO_ROOT = Path(__file__).resolve().parents[1]
TASK_FILES = {
    1: "dialog-babi-task1-API-calls",
    2: "dialog-babi-task2-API-refine",
    3: "dialog-babi-task3-options",
    4: "dialog-babi-task4-phone-address",
    5: "dialog-babi-task5-full-dialogs",
    6: "dialog-babi-task6-dstc2",
}


@dataclass(frozen=True)
class Turn:
    user: str | None  # None: <SILENCE>
    bot: str
    # Knowledge-base lines (without their number) seen since the previous turn.
    kb_lines: tuple[str, ...] = ()


@dataclass
class Dialog:
    index: int
    line: int  # 1-based line of the file where the dialog starts
    turns: list[Turn] = field(default_factory=list)


def data_dir() -> Path | None:
    """``$CHATBOT_DATA_DIR/babi-dialog`` (default ``../shared/data`` beside the checkout), or None
    when it is not there."""
    root = Path(os.environ.get("CHATBOT_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    folder = root / "babi-dialog"
    return folder if folder.is_dir() else None


def task_file(folder: Path, task: int, split: str) -> Path:
    return folder / f"{TASK_FILES[task]}-{split}.txt"


def read_dialogs(path: Path, limit: int | None = None) -> list[Dialog]:
    dialogs: list[Dialog] = []
    current: Dialog | None = None
    pending: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            raw = raw.rstrip("\n")
            if not raw.strip():
                continue
            head, _, rest = raw.partition(" ")
            if head == "1" or current is None:
                if limit is not None and len(dialogs) >= limit:
                    break
                current = Dialog(len(dialogs), number)
                dialogs.append(current)
                pending = []
            if "\t" not in rest:
                pending.append(rest.strip())
                continue
            user, _, bot = rest.partition("\t")
            user = user.strip()
            current.turns.append(
                Turn(None if user == SILENCE else user, bot.strip(), tuple(pending))
            )
            pending = []
    return dialogs
