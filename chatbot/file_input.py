"""Reading a file a user named (a project's YAML or JSON, a lookup table, a model file).

A path on the command line or in a project file may name something that is not a file: a device
(``/dev/zero`` never ends, and reading it whole fills the memory), a named pipe with no writer
(opening it waits forever), a socket. ``read_bytes`` reads regular files only, and refuses one
larger than its kind of file could sensibly be, with an ``OSError`` that ``file_problem`` puts in
words. The type is asked before the file is opened (opening some devices does something), and
the file is opened without waiting (``O_NONBLOCK``, which regular files ignore) and asked again,
in case the path was replaced in between.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

MIB = 1024 * 1024
# Far above any real project file (the largest data set the benchmarks read is 4 MB; a 50 MB
# nlu.yml of 1.35 million examples reads fine) and any model (a million-entry lookup table makes
# a 16 MB one), yet well below what reading the file whole could not hold in memory.
DATA_FILE_LIMIT = 256 * MIB
MODEL_FILE_LIMIT = 512 * MIB

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class NotARegularFile(OSError):
    """The path names a device, a named pipe (FIFO) or a socket."""


class FileTooLarge(OSError):
    """The file is larger than its kind of file may be (``limit`` bytes)."""


def read_bytes(path: Path, *, limit: int = DATA_FILE_LIMIT, what: str = "a data file") -> bytes:
    """The whole content of the regular file at ``path``.

    Raises ``FileNotFoundError``, ``IsADirectoryError``, ``NotARegularFile``, ``FileTooLarge``
    (``what``: the kind of file, for its message) or another ``OSError`` (``PermissionError``).
    """
    file, size = _open(path, limit, what)
    with file:
        data = _read(file, limit + 1, size)  # a file that grew since it was asked: refused too
    if len(data) > limit:
        raise _too_large(path, None, limit, what)
    return data


def read_start(path: Path, size: int) -> bytes:
    """At most the first ``size`` bytes of the regular file at ``path`` (errors as
    ``read_bytes``, except that a longer file is no error)."""
    file, known = _open(path, None, "")
    with file:
        return _read(file, size, known)


def file_problem(error: OSError) -> str:
    """Why a file could not be read, in words that follow its name and a colon."""
    if isinstance(error, (NotARegularFile, FileTooLarge)):
        return str(error.strerror)
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "expected a file, found a folder"
    return f"cannot read the file: {error.strerror or error}"


def kind_of(path: Path) -> str:
    """What ``path`` names that is not a regular file, in words ("a named pipe (FIFO)")."""
    try:
        return _kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return "nothing that can be read"


def _open(path: Path, limit: int | None, what: str) -> tuple[io.FileIO, int]:
    """The file opened to read, and its size."""
    try:
        _check(path, os.stat(path), limit, what)
        descriptor = os.open(path, os.O_RDONLY | _NONBLOCK)
    except ValueError:  # a NUL byte in the name: no file can have it
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path)) from None
    file = io.FileIO(descriptor, "rb", closefd=True)
    try:
        info = os.fstat(descriptor)
        _check(path, info, limit, what)
    except OSError:
        file.close()
        raise
    return file, info.st_size


def _read(file: io.FileIO, most: int, size: int) -> bytes:
    """At most ``most`` bytes (fewer only where the file ends). A read is asked for what the
    file's ``size`` says is there (and one byte more, to see the end), not for ``most``: Python
    sets aside the whole amount asked for before reading."""
    parts: list[bytes] = []
    left = most
    want = min(most, size + 1)
    while left > 0:
        chunk = file.read(want)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
        want = min(left, 1024 * 1024)
    return b"".join(parts)


def _check(path: Path, info: os.stat_result, limit: int | None, what: str) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not stat.S_ISREG(mode):
        raise NotARegularFile(errno.EINVAL, f"is not a regular file but {_kind(mode)}", str(path))
    if limit is not None and info.st_size > limit:
        raise _too_large(path, info.st_size, limit, what)


def _too_large(path: Path, size: int | None, limit: int, what: str) -> FileTooLarge:
    """``size``: the file's, where known (None: it grew past ``limit`` while being read)."""
    found = f"is {size / MIB:,.1f} MiB" if size is not None else "grew"
    return FileTooLarge(
        errno.EFBIG, f"{found}, more than {what} may be ({limit // MIB} MiB)", str(path)
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
