"""Exceptions told without what they may quote: driver errors whose messages can carry the
values they were sent (a Postgres DETAIL line, a Neo4j constraint report, a Weaviate object, a
pydantic input) are shown by their codes. Used by the logs and by the worker's outage
interceptor, so neither a log line nor workflow history holds a document's text."""

from __future__ import annotations

import sys
import traceback
from typing import Any


def render_exception(error: BaseException) -> str:
    """The traceback as Python prints it, causes first, with each exception's line from
    `describe` (so a driver's message that can quote values is left out)."""
    chain: list[tuple[BaseException, str | None]] = []  # newest first, with how it was raised
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            link, nxt = _CAUSE, current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link, nxt = _CONTEXT, current.__context__
        else:
            link, nxt = None, None
        chain.append((current, link))
        current = nxt
    parts: list[str] = []
    for exc, link in reversed(chain):
        if link is not None:  # how it came from the one printed above it
            parts.append(link)
        if exc.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(exc.__traceback__))
        parts.append(describe(exc) + "\n")
        for sub in exc.exceptions if isinstance(exc, BaseExceptionGroup) else ():
            parts.append(f"  - {describe(sub)}\n")
    return "".join(parts).rstrip("\n")


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def describe(error: BaseException) -> str:
    """``module.Type: message`` as Python prints an exception, except that drivers' errors
    whose messages can quote the values they were sent show their codes instead."""
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    message = safe_message(error)
    return f"{name}: {message}" if message else name


def safe_message(error: BaseException) -> str:
    """The exception's message, or for a driver error that can quote values, its codes."""
    detail = _driver_detail(error)
    return str(error) if detail is None else detail


def withholds_detail(error: BaseException) -> bool:
    """Whether `describe` leaves ``error``'s own message out."""
    return _driver_detail(error) is not None


def _loaded(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Exception classes of a module that is already imported (an error of a module never
    imported cannot exist). No import here: this may run inside Temporal's workflow sandbox."""
    loaded = sys.modules.get(module)
    if loaded is None:
        return ()
    return tuple(getattr(loaded, name) for name in names if hasattr(loaded, name))


# Postgres classes whose primary message quotes a value: 22 data exceptions ('invalid input
# syntax for type uuid: "..."'), P0 errors raised by PL/pgSQL.
_VALUE_QUOTING_SQLSTATES = ("22", "P0")
# Weaviate errors about reaching the server, whose messages hold no data; the rest can carry
# the server's reply or the objects sent (WeaviateInsertInvalidPropertyError prints its data).
_WEAVIATE_CONNECTION_ERRORS = (
    "WeaviateConnectionError",
    "WeaviateClosedClientError",
    "WeaviateStartUpError",
    "WeaviateTimeoutError",
    "WeaviateGRPCUnavailableError",
)


def _driver_detail(error: BaseException) -> str | None:
    """What to print instead of the message of a driver error that can quote values, or None
    when the message itself is fine."""
    if isinstance(error, _loaded("psycopg", "Error")):
        return _postgres_detail(error)
    if isinstance(error, _loaded("neo4j.exceptions", "Neo4jError")):
        # Errors the server reported (not the driver's own, such as ServiceUnavailable).
        return f"{getattr(error, 'code', None) or 'server error'} (message withheld)"
    if isinstance(error, _loaded("weaviate.exceptions", "WeaviateBaseError")):
        if isinstance(error, _loaded("weaviate.exceptions", *_WEAVIATE_CONNECTION_ERRORS)):
            return None
        status = getattr(error, "status_code", None)
        return f"HTTP {status} (message withheld)" if status else "(message withheld)"
    if isinstance(error, _loaded("grpc", "RpcError")):
        code = getattr(error, "code", None)
        status = code() if callable(code) else None
        return f"{getattr(status, 'name', 'RPC error')} (message withheld)"
    if isinstance(error, _loaded("openai", "APIStatusError")):
        return f"HTTP {getattr(error, 'status_code', '?')} (message withheld)"
    if isinstance(error, _loaded("pydantic_core", "ValidationError")):
        # str() shows each input value; the locations and kinds are enough to debug.
        errors: list[dict[str, Any]] = error.errors()  # type: ignore[attr-defined]
        shown = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['type']}"
            for item in errors[:5]
        )
        return f"{len(errors)} validation error(s): {shown} (input withheld)"
    return None


def _postgres_detail(error: BaseException) -> str | None:
    diag = getattr(error, "diag", None)
    sqlstate = getattr(diag, "sqlstate", None) or getattr(error, "sqlstate", None)
    if not sqlstate:
        return None  # raised by the client itself (connecting, adapting): quotes no row
    parts = [f"SQLSTATE {sqlstate}"]
    primary = getattr(diag, "message_primary", None)
    if primary and not sqlstate.startswith(_VALUE_QUOTING_SQLSTATES):
        parts.append(primary)
    for label in ("constraint", "table", "column"):
        value = getattr(diag, f"{label}_name", None)
        if value:
            parts.append(f"{label} {value}")
    return ", ".join(parts) + " (detail withheld)"
