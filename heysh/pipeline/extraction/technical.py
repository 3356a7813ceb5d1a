"""Technical text is not names: the parts of a chunk the heuristic extractor must not read as
people, places or organisations.

* Code is blanked out before scanning (same length, line breaks kept, so offsets hold): fenced
  blocks, indented blocks that look like code or follow a line ending in ":", inline code spans,
  doctest lines and URLs.
* Identifiers are no names: a capitalised word joined to code (``Session.close``,
  ``foo(`` , ``_private``, ``STREAM_ID``) or an exception class (``SyntaxError``,
  ``KeyboardInterrupt``); CamelCase alone is not code (``CPython``, ``PostgreSQL``).
* Placeholders in capitals (``NAME := EXPR``) are no acronyms: a word in capitals next to code
  punctuation anywhere in the chunk is a placeholder everywhere in it.
* Headings (Markdown ``#`` lines and underlined lines) and labels opening a line (``Correct:``,
  ``Status: Final``, ``- FORBIDDEN: ...``) are not sentences: their capitals say nothing.
"""

from __future__ import annotations

import re

_FENCE_RE = re.compile(
    r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL
)
_INLINE_CODE_RE = re.compile(r"(`+)[^`\n]+?\1")  # `x` and reStructuredText's ``x``
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"')\]]+")
_DOCTEST_RE = re.compile(r"^[ \t]*(?:>>>|\.\.\.)(?: [^\n]*)?$", re.MULTILINE)
_INDENTED_RE = re.compile(r"(?:^(?:    |\t)[^\n]*\n?)+", re.MULTILINE)
_CODE_CHARS_RE = re.compile(r"[=(){}\[\];<>]|^\s*[#$@]")
_HEADING_RE = re.compile(r"^[ \t]*#{1,6}[ \t][^\n]*$|^[^\n]+\n[ \t]*(?:=+|-+)[ \t]*$", re.MULTILINE)
# A label opens a line: "Correct:", "Note: ...", "- BASE_URL: ...", "Python-Version: 3.8".
_LABEL_RE = re.compile(
    r"^[ \t]*(?:[-*+][ \t]+)?([A-Z][\w-]*(?:[ \t][A-Za-z][\w-]*)?):(?=\s|$)", re.MULTILINE
)
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt", "Iteration", "Fault")
_CAMEL_RE = re.compile(r"[a-z][A-Z]")
# Code punctuation next to a word in capitals makes it a placeholder ("NAME := EXPR").
_CAPS_WORD_RE = re.compile(r"\b[A-Z][A-Z0-9_]+\b")
_CODE_BEFORE = frozenset("=<>[{|")
_CODE_AFTER = frozenset("=<>]}|")


_CODE_MARKS = ("`", "~~~", "://", ">>>", "    ", "\t")


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def mask_code(text: str) -> str:
    """``text`` with its code replaced by spaces (same length, same line breaks)."""
    if not any(mark in text for mark in _CODE_MARKS):
        return text  # prose: nothing to do, and no copy
    chars = list(text)
    for match in _FENCE_RE.finditer(text):
        _blank(chars, *match.span())
    for match in _INDENTED_RE.finditer(text):
        start, end = match.span()
        before = text[:start].rstrip()
        opened = not before or text[:start].endswith("\n\n") or before.endswith(":")
        if opened and (before.endswith(":") or _CODE_CHARS_RE.search(match.group())):
            _blank(chars, start, end)
    for regex in (_INLINE_CODE_RE, _URL_RE, _DOCTEST_RE):
        for match in regex.finditer(text):
            _blank(chars, *match.span())
    return "".join(chars)


def heading_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each heading line."""
    spans = []
    for match in _HEADING_RE.finditer(text):
        start, end = match.span()
        line_end = text.find("\n", start)
        spans.append((start, end if line_end < 0 or "#" in text[start:line_end] else line_end))
    return spans


def label_ends(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each label's word(s) opening a line (the colon follows ``end``)."""
    return [match.span(1) for match in _LABEL_RE.finditer(text)]


def is_identifier(text: str, start: int, end: int) -> bool:
    """Whether the word ``text[start:end]`` is code: joined to code characters, snake_case, or
    an exception class name."""
    word = text[start:end]
    if "_" in word or (word.endswith(_EXCEPTION_SUFFIXES) and _CAMEL_RE.search(word)):
        return True
    after = text[end : end + 2]
    if after[:1] == "(" or (after[:1] == "." and after[1:2].isalnum()):
        return True  # "foo(", "Session.close"
    before = text[start - 1 : start] if start else ""
    return before in (".", "_")  # "module.Class"


def placeholders(text: str) -> frozenset[str]:
    """Words in capitals that the chunk uses next to code punctuation (lower case)."""
    found = set()
    for match in _CAPS_WORD_RE.finditer(text):
        start, end = match.span()
        before = text[max(0, start - 3) : start].rstrip()
        after = text[end : end + 3].lstrip()
        if (
            (before and before[-1] in _CODE_BEFORE)
            or before.endswith(":=")
            or (after and after[0] in _CODE_AFTER)
            or after.startswith(":=")
            or text[end : end + 1] == "("
        ):
            found.add(match.group().lower())
    return frozenset(found)
