"""Structured logs without services: formats, context fields, redaction, driver errors."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pydantic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from temporalio import activity
from temporalio.testing import ActivityEnvironment
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.config import Environment, Settings
from heysh.telemetry.errors import describe
from heysh.telemetry.logs import (
    REDACTED,
    REQUEST_ID,
    build_handler,
    configured_secrets,
    request_id_middleware,
)

SENTENCE = "The quartermaster hid seventeen brass keys beneath the lighthouse stairs."
WORDS = "seventeen brass keys"  # short enough that pydantic quotes it whole


@pytest.fixture(autouse=True)
def _no_heysh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("HEYSH_", "OTEL_")):
            monkeypatch.delenv(name)


def secret_fields() -> list[str]:
    """Every Settings field that holds a SecretStr, whoever added it."""
    return [
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *typing.get_args(field.annotation))
    ]


def settings_with_every_secret() -> tuple[Settings, dict[str, str]]:
    values = {name: f"{name}-{uuid.uuid4().hex}" for name in secret_fields()}
    values["database_url"] = f"postgresql://app:pg-{uuid.uuid4().hex}@db.example:5432/postgres"
    return Settings(env="test", **values), values  # type: ignore[arg-type]


class Captured:
    """A logger of its own whose records go through build_handler into a string."""

    def __init__(self, settings: Settings, process: str = "api") -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger(f"heysh.test.{uuid.uuid4().hex}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(build_handler(settings, process, self.stream))

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def request_id() -> Iterator[str]:
    value = f"req-{uuid.uuid4().hex}"
    token = REQUEST_ID.set(value)
    yield value
    REQUEST_ID.reset(token)


def test_every_secret_setting_is_redacted_from_messages_arguments_and_tracebacks() -> None:
    settings, values = settings_with_every_secret()
    assert {"database_url", "neo4j_password", "weaviate_api_key", "temporal_api_key"} <= set(values)
    assert {"openai_api_key", "supabase_jwt_secret"} <= set(values)
    password = values["database_url"].split(":")[2].split("@")[0]
    log = Captured(settings.model_copy(update={"log_format": "json"}))
    for name, value in values.items():
        log.logger.warning("setting %s is %s", name, value)
        try:
            try:
                raise ValueError(f"the driver echoed {value}")
            except ValueError as exc:
                raise RuntimeError(f"while using {value}") from exc
        except RuntimeError:
            log.logger.exception("failed with %s in the message", value)
    log.logger.info("only the password: %s", password)

    assert log.text.count(REDACTED) >= 4 * len(values) + 1
    for value in [*values.values(), password]:
        assert value not in log.text
    assert all(line["severity"] in {"WARNING", "ERROR", "INFO"} for line in log.lines())
    failures = [line for line in log.lines() if line["severity"] == "ERROR"]
    assert all("direct cause" in line["exception"] for line in failures)


def test_secrets_in_otlp_header_variables_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=hc-key-91kd,other=v%3D2x")
    secrets = configured_secrets(Settings(env="test"))
    assert "hc-key-91kd" in secrets
    assert "v=2x" in secrets


def test_postgres_errors_are_logged_by_sqlstate_without_their_detail_lines() -> None:
    log = Captured(Settings(env="test", log_format="json"))
    detail = f'duplicate key value\nDETAIL:  Key (title)=("{SENTENCE}") already exists.'
    try:
        raise psycopg.errors.UniqueViolation(detail)
    except psycopg.Error:
        log.logger.exception("could not add")
    (line,) = log.lines()
    assert "psycopg.errors.UniqueViolation: SQLSTATE 23505" in line["exception"]
    assert SENTENCE not in log.text


def test_weaviate_and_validation_errors_are_logged_without_the_data_they_echo() -> None:
    log = Captured(Settings(env="test", log_format="json"))
    reply = httpx.Response(422, json={"error": [{"message": f"bad object text={SENTENCE}"}]})

    class Reply(pydantic.BaseModel):
        count: int

    errors: list[Exception] = [UnexpectedStatusCodeError("insert failed", reply)]
    try:
        Reply.model_validate({"count": WORDS})
    except pydantic.ValidationError as exc:
        errors.append(exc)
    # What a plain traceback would print:
    assert SENTENCE in str(errors[0])
    assert WORDS in str(errors[1])
    for error in errors:
        try:
            raise RuntimeError("store call failed") from error
        except RuntimeError:
            log.logger.exception("failed")
    assert SENTENCE not in log.text
    assert WORDS not in log.text
    assert "HTTP 422 (message withheld)" in describe(errors[0])
    assert "count: int_parsing (input withheld)" in describe(errors[1])


def test_uvicorn_request_lines_lose_their_query_string(request_id: str) -> None:
    log = Captured(Settings(env="test", log_format="json"))
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/graphql?query={SENTENCE}", "1.1", 200),
        None,
    )
    log.logger.handle(record)
    (line,) = log.lines()
    assert line["message"] == '127.0.0.1:5000 - "GET /graphql HTTP/1.1" 200'
    assert line["request_id"] == request_id


def test_production_lines_are_json_with_the_ids_present_and_no_others() -> None:
    # Unvalidated: production's secrets are not the point here.
    production = Settings.model_construct(env=Environment.PRODUCTION)
    log = Captured(production, process="worker")
    log.logger.info("outside any request")
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        token = REQUEST_ID.set("abc123")
        log.logger.info("inside %s", "a request")
        REQUEST_ID.reset(token)
    outside, inside = log.lines()
    assert set(outside) == {"time", "severity", "logger", "message", "process"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", outside["time"])
    assert outside["process"] == "worker"
    context = span.get_span_context()
    assert inside["message"] == "inside a request"
    assert inside["request_id"] == "abc123"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")


def test_dev_lines_are_readable_text_with_the_ids_that_exist(request_id: str) -> None:
    log = Captured(Settings(env="dev"))
    log.logger.warning("slow %s", "thing")
    (line,) = log.text.splitlines()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} api WARNING heysh\.test\.\w+: slow thing "
        rf"request_id={request_id}",
        line,
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_format_setting_overrides_the_environment() -> None:
    dev_json = Captured(Settings(env="dev", log_format="json"))
    dev_json.logger.info("one")
    assert dev_json.lines()[0]["message"] == "one"
    production_text = Captured(
        Settings.model_construct(env=Environment.PRODUCTION, log_format="text")
    )
    production_text.logger.info("two")
    assert production_text.text.rstrip().endswith("INFO " + production_text.logger.name + ": two")


async def test_lines_inside_an_activity_carry_its_workflow_run_and_type() -> None:
    log = Captured(Settings(env="test", log_format="json"))

    @activity.defn(name="embed_things")
    async def embed_things() -> None:
        log.logger.info("embedding")

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info,
        activity_type="embed_chunks",
        workflow_type="ProcessDocument",
        workflow_id="process-document-d1-r1",
        workflow_run_id=str(uuid.uuid4()),
        attempt=2,
    )
    await environment.run(embed_things)
    (line,) = log.lines()
    assert line["activity"] == "embed_chunks"
    assert line["workflow"] == "ProcessDocument"
    assert line["workflow_id"] == "process-document-d1-r1"
    assert line["run_id"] == environment.info.workflow_run_id
    assert line["attempt"] == 2


def test_each_request_gets_an_id_in_its_response_and_its_log_lines() -> None:
    log = Captured(Settings(env="test", log_format="json"))

    async def hello(request: Request) -> PlainTextResponse:
        log.logger.info("serving")
        return PlainTextResponse("hi")

    async def socket(websocket: WebSocket) -> None:
        log.logger.info("socket")
        await websocket.accept()
        await websocket.close()

    app = Starlette(
        middleware=request_id_middleware(),
        routes=[Route("/", hello), WebSocketRoute("/ws", socket)],
    )
    with TestClient(app) as client:
        fresh = client.get("/").headers["x-request-id"]
        kept = client.get("/", headers={"X-Request-ID": "lb-7f3a:01"}).headers["x-request-id"]
        refused = client.get("/", headers={"X-Request-ID": "a" * 200}).headers["x-request-id"]
        with client.websocket_connect("/ws") as websocket:
            headers = dict(websocket.extra_headers or [])
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    assert kept == "lb-7f3a:01"
    assert re.fullmatch(r"[0-9a-f]{32}", refused)
    socket_id = headers[b"x-request-id"].decode()
    assert re.fullmatch(r"[0-9a-f]{32}", socket_id)
    assert [line["request_id"] for line in log.lines()] == [fresh, kept, refused, socket_id]
    assert REQUEST_ID.get() is None
