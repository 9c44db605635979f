"""Asking the file system about a path a user wrote (in a project file or an option).

``Path.is_file()`` and ``Path.exists()`` raise for a name no file can have (longer than the system
allows: ``OSError`` ENAMETOOLONG; a NUL byte is already answered False by pathlib). Such a name
names no file, so these answer False, and the caller's own "not found" error names the value.
"""

from __future__ import annotations

from pathlib import Path


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False where it cannot name one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def exists(path: Path) -> bool:
    """Whether ``path`` exists; False where it cannot name anything."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False where it cannot name one."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
