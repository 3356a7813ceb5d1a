"""Counts the statements the stores send to Neo4j and Postgres from one piece of code.

The count is bound to the calling task's context, so the worker's activities (running in the
same test process, in tasks of their own) never add to it. It wraps the client libraries' own
entry points, so every statement heysh issues passes through it, whichever store method sent it.
The pool's connection check (an empty statement before a connection is handed out) is a round
trip too, and is counted apart as "postgres check".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
import pytest
from neo4j import AsyncSession
from neo4j._async.work.transaction import AsyncTransactionBase

_sent: ContextVar[list[str] | None] = ContextVar("heysh_test_statements", default=None)

_ENTRY_POINTS: list[tuple[Any, str, str]] = [
    (AsyncTransactionBase, "run", "neo4j"),  # explicit, managed and execute_query transactions
    (AsyncSession, "run", "neo4j"),  # auto-commit statements
    (psycopg.AsyncCursor, "execute", "postgres"),  # also under AsyncConnection.execute
    (psycopg.AsyncCursor, "executemany", "postgres"),
    (psycopg.AsyncCursor, "copy", "postgres"),
]


def _counted(method: Callable[..., Any], store: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        statements = _sent.get()
        if statements is not None:
            statement = args[1] if len(args) > 1 else kwargs.get("query")
            empty = store == "postgres" and not str(statement or "").strip()
            statements.append("postgres check" if empty else store)
        return method(*args, **kwargs)

    return wrapper


class StatementCounter:
    """Wraps the entry points while it lives: with ``monkeypatch`` until the test ends, else
    until ``close``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        self._originals = [(owner, name, getattr(owner, name)) for owner, name, _ in _ENTRY_POINTS]
        for owner, name, store in _ENTRY_POINTS:
            wrapped = _counted(getattr(owner, name), store)
            if monkeypatch is not None:
                monkeypatch.setattr(owner, name, wrapped)
            else:
                setattr(owner, name, wrapped)
        self._restore = monkeypatch is None

    def close(self) -> None:
        if self._restore:
            for owner, name, original in self._originals:
                setattr(owner, name, original)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """Yields a list that gets one entry ("neo4j", "postgres" or "postgres check") per
        statement the code in the block sends."""
        statements: list[str] = []
        token = _sent.set(statements)
        try:
            yield statements
        finally:
            _sent.reset(token)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    return StatementCounter(monkeypatch)
