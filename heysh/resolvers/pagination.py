"""Relay cursor connections over keyset-ordered lists: one helper for every connection.

A cursor is opaque to clients: base64url of JSON naming its connection and the keyset position
of its row. A cursor from another connection, or one that does not decode, is refused rather than
guessed at; a well-formed one only ever moves within the caller's own authorized list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from heysh.errors import InvalidInputError
from heysh.stores.postgres import PageKey

Row = TypeVar("Row")


@dataclass(frozen=True)
class PageRequest:
    """``first`` rows after ``after`` (None: from the start) of the connection ``name``."""

    name: str
    first: int
    after: PageKey | None

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than asked, to know whether a next page exists."""
        return self.first + 1


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    has_next_page: bool
    has_previous_page: bool


def page_request(name: str, first: int, after: str | None, max_page_size: int) -> PageRequest:
    if not 0 <= first <= max_page_size:
        raise InvalidInputError(f"first must be between 0 and {max_page_size}")
    key = None
    if after is not None:
        key = decode_cursor(name, after)
        if key is None:
            raise InvalidInputError(f"after is not a cursor of this {name} connection")
    return PageRequest(name, first, key)


def page_of(request: PageRequest, fetched: Sequence[Row]) -> Page[Row]:
    """The page from ``request.fetch`` rows fetched in keyset order."""
    return Page(
        list(fetched[: request.first]),
        has_next_page=len(fetched) > request.first,
        has_previous_page=request.after is not None,
    )


def encode_cursor(name: str, key: PageKey) -> str:
    raw = json.dumps([name, key.created_at.isoformat(), str(key.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(name: str, cursor: str) -> PageKey | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        kind, created_at, row_id = decoded
        if kind != name or not isinstance(created_at, str) or not isinstance(row_id, str):
            return None
        return PageKey(datetime.fromisoformat(created_at), UUID(row_id))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        return None
