"""Relay cursor connections over keyset-ordered lists: one helper for every connection.

A cursor is opaque to clients: base64url of JSON naming its connection and the keyset position
of its row (the fields of a frozen key dataclass, such as ``PageKey(created_at, id)``). A cursor
from another connection, or one that does not decode into that connection's key, is refused
rather than guessed at; a well-formed one only ever moves within the caller's own authorized list.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from heysh.errors import InvalidInputError
from heysh.stores.postgres import PageKey

Row = TypeVar("Row")
Key = TypeVar("Key")


@dataclass(frozen=True)
class PageRequest(Generic[Key]):
    """``first`` rows after ``after`` (None: from the start) of the connection ``name``."""

    name: str
    first: int
    after: Key | None

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than asked, to know whether a next page exists."""
        return self.first + 1


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    has_next_page: bool
    has_previous_page: bool


@typing.overload
def page_request(
    name: str, first: int, after: str | None, max_page_size: int
) -> PageRequest[PageKey]: ...


@typing.overload
def page_request(
    name: str, first: int, after: str | None, max_page_size: int, key_type: type[Key]
) -> PageRequest[Key]: ...


def page_request(
    name: str,
    first: int,
    after: str | None,
    max_page_size: int,
    key_type: type[Any] = PageKey,
) -> PageRequest[Any]:
    if not 0 <= first <= max_page_size:
        raise InvalidInputError(f"first must be between 0 and {max_page_size}")
    key = None
    if after is not None:
        key = decode_cursor(name, after, key_type)
        if key is None:
            raise InvalidInputError(f"after is not a cursor of this {name} connection")
    return PageRequest(name, first, key)


def page_of(request: PageRequest[Any], fetched: Sequence[Row]) -> Page[Row]:
    """The page from ``request.fetch`` rows fetched in keyset order."""
    return Page(
        list(fetched[: request.first]),
        has_next_page=len(fetched) > request.first,
        has_previous_page=request.after is not None,
    )


def encode_cursor(name: str, key: Any) -> str:
    values = [_to_json(getattr(key, f.name)) for f in dataclasses.fields(key)]
    raw = json.dumps([name, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(name: str, cursor: str, key_type: type[Key]) -> Key | None:
    try:
        kind, *values = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        hints = typing.get_type_hints(key_type)
        names = [f.name for f in dataclasses.fields(key_type)]  # type: ignore[arg-type]
        if kind != name or len(values) != len(names):
            return None
        return key_type(**{n: _from_json(v, hints[n]) for n, v in zip(names, values, strict=True)})
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        return None


def _to_json(value: Any) -> str | int:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _from_json(value: Any, kind: Any) -> Any:
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is UUID and isinstance(value, str):
        return UUID(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError("cursor value of the wrong kind")
