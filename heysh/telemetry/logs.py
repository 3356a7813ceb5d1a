"""Structured logs: one handler for every logger in the process (heysh's, uvicorn's, Temporal's),
JSON lines in production and readable lines elsewhere (``HEYSH_LOG_FORMAT`` overrides).

Each line carries the ids it belongs to, when they exist: ``request_id`` (an api request or
WebSocket connection, set by `RequestIdMiddleware`), ``trace_id``/``span_id`` (the current
OpenTelemetry span), and inside Temporal ``workflow_id`` (heysh's run id), ``run_id`` (Temporal's
run of it), ``workflow``, ``activity`` and ``attempt``.

What never reaches a line: the configured secrets (replaced by ``[redacted]`` wherever they
appear, tracebacks included), query strings of request URLs (GraphQL over GET carries its
variables there), and the messages of driver errors that can quote the values they were sent (a
Postgres DETAIL line, a Neo4j constraint report, a Weaviate object, a pydantic input): those are
shown by their codes (`heysh.telemetry.errors`). Libraries never log below INFO, whatever
``HEYSH_LOG_LEVEL`` says: at DEBUG they dump payloads (Temporal activations, OpenAI request
bodies, Neo4j parameters).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any, Literal
from urllib.parse import unquote, urlsplit

from opentelemetry import trace
from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio import activity
from temporalio import workflow as temporal_workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from heysh.config import ConfigError, Environment, Settings
from heysh.telemetry.errors import render_exception

LogFormat = Literal["json", "text"]

REDACTED = "[redacted]"
REQUEST_ID_HEADER = "x-request-id"
# The id of the api request (or WebSocket connection) being served; None outside one.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "heysh_request_id", default=None
)
# An incoming X-Request-ID is kept only when it is short and plain: it is written into every
# line, so it must not carry line breaks, quotes or a megabyte of text.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")

# Libraries that log each request at INFO: quieted to WARNING, as before structured logs
# (httpx2 is the copy of httpx the openai SDK ships).
_CHATTY = ("httpx", "httpx2", "httpcore", "neo4j")
# Where OTLP exporters read their headers (which carry the tracing backend's API key).
_OTLP_HEADER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
)
_FIELDS = "heysh_fields"  # the LogRecord attribute ContextFields fills
_HANDLER_MARK = "heysh_handler"


def log_format(settings: Settings) -> LogFormat:
    if settings.log_format is not None:
        return settings.log_format
    return "json" if settings.env is Environment.PRODUCTION else "text"


def log_level(settings: Settings) -> int:
    level = logging.getLevelName(settings.log_level.strip().upper())
    if not isinstance(level, int):
        raise ConfigError(f"HEYSH_LOG_LEVEL is not a logging level: {settings.log_level!r}")
    return level


def configure_logging(
    settings: Settings, process: str, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every logger's records through one handler (replacing one set up before), for
    ``process`` (``api``, ``worker``, ...), and route Python warnings and uncaught exceptions
    through it too. Returns the handler."""
    level = log_level(settings)
    handler = build_handler(settings, process, stream)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.INFO))  # libraries: INFO at most (see the module doc)
    logging.getLogger("heysh").setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # The ids are fields of their own here; Temporal would also append them to each message.
    activity.logger.activity_info_on_message = False
    temporal_workflow.logger.workflow_info_on_message = False
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # Clients on the default runtime (all but a worker exporting metrics, whose runtime takes
    # temporal_core_logging() itself) send Temporal core's warnings through this handler.
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=temporal_core_logging())),
        error_if_already_set=False,
    )
    return handler


def build_handler(
    settings: Settings, process: str, stream: IO[str] | None = None
) -> logging.Handler:
    """A stream handler (stderr by default) in the settings' format, adding the context fields
    and redacting the settings' secrets."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFields())
    handler.addFilter(Scrub(configured_secrets(settings)))
    formatter = JsonLines(process) if log_format(settings) == "json" else TextLines(process)
    handler.setFormatter(formatter)
    return handler


def temporal_core_logging() -> LoggingConfig:
    """Temporal's core (Rust) logs forwarded into Python logging, so they come out in this
    format instead of as its own console lines. For every ``TelemetryConfig(logging=...)``."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )


# --- the fields on each line ----------------------------------------------------------------------


class ContextFields(logging.Filter):
    """Adds the ids the record was logged under (request, trace, Temporal run), and takes the
    query string out of uvicorn's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, str | int] = {}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            fields["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = format(span.trace_id, "032x")
            fields["span_id"] = format(span.span_id, "016x")
        fields.update(_temporal_fields(record))
        if record.name.startswith("uvicorn") and isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        setattr(record, _FIELDS, fields)
        return True


def _temporal_fields(record: logging.LogRecord) -> dict[str, str | int]:
    if activity.in_activity():
        info = activity.info()
        found = {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "workflow": info.workflow_type,
            "activity": info.activity_type,
            "attempt": info.attempt,
        }
        return {field: value for field, value in found.items() if value is not None}
    # The workflow logger's records carry the run's details (no context var inside the sandbox).
    details = getattr(record, "temporal_workflow", None)
    if isinstance(details, dict):
        names = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_type": "workflow"}
        return {field: details[key] for key, field in names.items() if key in details}
    return {}


def _without_query(arg: object) -> object:
    """A request path as uvicorn logs it, less its query string (GraphQL over GET puts the
    query and its variables there)."""
    if isinstance(arg, str) and arg.startswith("/") and "?" in arg:
        return arg.split("?", 1)[0]
    return arg


# --- secrets and driver messages ------------------------------------------------------------------


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value the process holds: each SecretStr setting (whole, and the password
    inside a connection string), passwords inside other URL settings, and the values of the
    OTLP exporter's header variables. Longest first, so a secret inside another goes with it."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            found.add(secret)
            found.update(_passwords_in(secret))
        elif isinstance(value, str):
            found.update(_passwords_in(value))
    for variable in _OTLP_HEADER_VARIABLES:
        for item in os.environ.get(variable, "").split(","):
            value = item.partition("=")[2].strip()
            found.update({value, unquote(value)})
    return sorted((value for value in found if value.strip()), key=len, reverse=True)


def _passwords_in(value: str) -> set[str]:
    """The password of a URL (as written and decoded) or of a libpq key=value string."""
    found: set[str] = set()
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            found.update({password, unquote(password)})
    elif "password" in value:
        match = re.search(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", value)
        if match:
            found.add(match.group(1).strip("'"))
    return found


class Scrub(logging.Filter):
    """Replaces each secret with ``[redacted]`` in the message and the exception text, and
    renders exceptions with `render_exception` (driver errors by their codes)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        values = [re.escape(secret) for secret in secrets if secret]
        self._pattern = re.compile("|".join(values)) if values else None

    def redact(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info is not None:
            error = record.exc_info[1]
            record.exc_text = render_exception(error) if error is not None else None
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("heysh").critical("uncaught exception", exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    thread = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("heysh").critical(
        "uncaught exception in %s",
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


# --- formats --------------------------------------------------------------------------------------


class JsonLines(JsonFormatter):
    """One JSON object a line: ``time``, ``severity`` (the field Cloud Logging reads),
    ``logger``, ``message``, ``process``, the context fields present, and ``exception``."""

    def __init__(self, process: str) -> None:
        super().__init__(json_ensure_ascii=False)
        self.process = process

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _timestamp(record)
        log_data["severity"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data["process"] = self.process
        log_data.update(getattr(record, _FIELDS, {}))
        if message_dict.get("exc_info"):
            log_data["exception"] = message_dict["exc_info"]
        if message_dict.get("stack_info"):
            log_data["stack"] = message_dict["stack_info"]

    def formatException(self, ei: Any) -> str:
        return render_exception(ei[1]) if ei and ei[1] is not None else ""


class TextLines(logging.Formatter):
    """``time process LEVEL logger: message key=value ...`` with the exception below."""

    def __init__(self, process: str) -> None:
        safe = process.replace("%", "")
        super().__init__(f"%(asctime)s {safe} %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        suffix = "".join(f" {key}={value}" for key, value in fields.items())
        return super().formatMessage(record) + suffix

    def formatException(self, ei: Any) -> str:
        return render_exception(ei[1]) if ei and ei[1] is not None else ""


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the request id -------------------------------------------------------------------------------


def request_id_middleware() -> list[Middleware]:
    return [Middleware(RequestIdMiddleware)]


class RequestIdMiddleware:
    """ASGI middleware: each HTTP request, and each WebSocket connection, runs with a request
    id (the caller's well-formed X-Request-ID, else a new one) that every line logged while
    serving it carries, and that the response (or the WebSocket handshake) returns."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in _RESPONSE_STARTS:
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        await self.app(scope, receive, send_with_id)
        # Reset only on success: a failure propagates to the server, which logs it in this same
        # task (each request is a task of its own) and should log it with the id.
        REQUEST_ID.reset(token)


_RESPONSE_STARTS = ("http.response.start", "websocket.accept", "websocket.http.response.start")


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _WELL_FORMED_ID.fullmatch(candidate) else None
    return None
