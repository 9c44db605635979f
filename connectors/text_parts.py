"""Long bot texts in parts a platform takes: at most so many characters, as the platform counts
them, and never cut inside what a reader sees as one character.

Platforms count in UTF-16 units (JavaScript's string length: Telegram, Messenger, Slack; Twilio's
UCS-2 SMS): an emoji outside the Basic Multilingual Plane is two, so a part measured in Python
characters could pass the limit by up to twice. A cut made at the limit where no space is near
could fall inside a grapheme cluster: between an emoji and its skin tone, inside a ZWJ family or
a flag (whose halves then pair with the next flag, every later one the wrong country), between a
letter and its combining accent. Parts are measured in UTF-16 units (never more than the
platform's count, whichever it uses) and cut between grapheme clusters (the ``regex`` library's
``\\X``).
"""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")


def utf16_units(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (two for a character past U+FFFF)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def fitting_end(text: str, limit: int) -> int:
    """The end of the longest start of ``text`` that is at most ``limit`` UTF-16 units and
    ends between two grapheme clusters; where even the first cluster is longer (a pathological
    chain of combining marks), the longest start within the limit, at least one character."""
    units = end = 0
    for cluster in _GRAPHEME.finditer(text):
        units += utf16_units(cluster.group())
        if units > limit:
            break
        end = cluster.end()
    if end:
        return end
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return max(index, 1)
    return len(text)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts, as Rasa's channels send it: at blank lines, and parts longer than
    ``limit`` UTF-16 units cut at the last space in their second half (else as late as the
    limit lets, between two grapheme clusters)."""
    parts: list[str] = []
    for block in text.split("\n\n"):
        while utf16_units(block) > limit:
            fit = fitting_end(block, limit)
            cut = block.rfind(" ", fit // 2, fit)
            cut = cut if cut > 0 else fit
            parts.append(block[:cut])
            block = block[cut:].lstrip(" ")
        if block.strip():
            parts.append(block)
    return parts
