"""Rules for caller text that Postgres stores: what it cannot hold, and what a label must not be.

Postgres `text` cannot hold NUL (U+0000), and UTF-8 cannot encode a lone surrogate, which JSON
escapes (`"\\ud800"`) can still deliver. Names and titles are one-line labels: any control
character in them is refused. Descriptions may span lines, so tab and line breaks pass there.
Document content is text as extracted (PDF extractors often emit NULs): its NULs are removed and
counted, and every other character is kept.
"""

from __future__ import annotations

import unicodedata

LINE_BREAKS = frozenset("\t\n\r")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})  # control characters, lone surrogates


def refused_character(value: str, *, allow: frozenset[str] = frozenset()) -> str | None:
    """A message naming the first character ``value`` may not contain, or None when it is clean."""
    for char in value:
        if char not in allow and unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"must not contain control characters (found U+{ord(char):04X})"
    return None


def without_nul(data: bytes) -> tuple[bytes, int]:
    """``data`` without NUL bytes, and how many there were; no copy when there are none.

    In UTF-8 a 0 byte only ever encodes U+0000, so this removes exactly the NUL characters.
    """
    count = data.count(0)
    return (data.replace(b"\0", b""), count) if count else (data, 0)
