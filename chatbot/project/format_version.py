"""The ``version:`` of a training data, test stories or domain file, read as Rasa 3 reads it.

Rasa checks it in each such file (``validate_training_data_format_version``): a version newer than
the latest it knows, "3.1", means a file it cannot read, which is skipped with a warning; a value
that is not a version written as text (``version: 3.1``, a number; ``version: garbage``) is
a warning, and the file is read as a "3.1" one; an empty value is read as no value. A file of
Rasa 2's format ("2.0") is read as a Rasa 3 file, with a line saying so.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from chatbot.project.yaml_io import line_of, to_plain

logger = logging.getLogger(__name__)

LATEST_FORMAT_VERSION = "3.1"
_LATEST = (3, 1)

# A version as Python's packaging library reads one (PEP 440), as Rasa parses it.
_VERSION = re.compile(
    r"v?(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?P<pre>[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
    r"(?P<post>-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
    r"(?:[-_.]?dev[-_.]?[0-9]*)?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?",
    re.IGNORECASE,
)


def older_format(data: Any) -> bool:
    """Whether a file's ``version:`` is older than Rasa 3's format (a Rasa 2 file: "2.0")."""
    if not isinstance(data, dict) or "version" not in data:
        return False
    try:
        return int(str(data["version"]).strip().split(".", 1)[0]) < 3
    except ValueError:
        return False  # not a version number: check_format_version names it


def check_format_version(data: Any, file: str | None) -> bool:
    """Whether to read a file after its ``version:`` (a parsed mapping; anything else is read,
    its shape is checked elsewhere), saying why where it is not as it should be."""
    if not isinstance(data, dict) or "version" not in data:
        return True
    value = data["version"]
    where = f"{file}:{line_of(data, 'version') or 1}: " if file else ""
    if not value:  # "", null, 0: Rasa reads the file as if it had no version
        logger.info(
            "%s'version' is empty: read as a version \"%s\" file", where, LATEST_FORMAT_VERSION
        )
        return True
    match = _VERSION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        logger.warning(
            "%smust specify 'version' as string, for example: version: \"%s\" (found %r); "
            'read as a version "%s" file',
            where,
            LATEST_FORMAT_VERSION,
            to_plain(value),
            LATEST_FORMAT_VERSION,
        )
        return True
    if _newer_than_latest(match):
        logger.warning(
            '%sformat version %r is newer than "%s", the latest of Rasa 3: the file is '
            "skipped, as Rasa skips it",
            where,
            value,
            LATEST_FORMAT_VERSION,
        )
        return False
    if older_format(data):
        # A line of information, not a warning: Rasa's --fail-on-warnings passes such files.
        logger.info(
            "%sformat version %r is older than Rasa 3's: read as a Rasa 3 file (its version "
            'is "3.1"; `chatbot data migrate` rewrites a Rasa 2 domain)',
            where,
            value.strip(),
        )
    return True


def _newer_than_latest(match: re.Match[str]) -> bool:
    if int(match["epoch"] or 0) > 0:
        return True
    release = [int(part) for part in match["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    if tuple(release) != _LATEST:
        return tuple(release) > _LATEST
    return match["post"] is not None and match["pre"] is None  # "3.1.post1"; "3.1rc1" is older
