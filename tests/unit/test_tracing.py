"""Tracing without services: when the OTEL_* variables turn it on, what leaves a span, and that
recorded workflow runs replay with the tracing interceptor in place."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from strawberry.schema.exceptions import CannotGetOperationTypeError
from temporalio.client import WorkflowHistory
from temporalio.worker import Interceptor, Replayer

from heysh.config import Environment, Settings
from heysh.schema import build_schema
from heysh.telemetry.metrics import ApiMetrics
from heysh.telemetry.tracing import (
    API_SERVICE,
    WORKER_SERVICE,
    add_exporter,
    disable_tracing,
    enable_tracing,
    export_requested,
    store_span,
    temporal_interceptors,
    tracer_provider,
)
from heysh.worker import WORKFLOWS

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
HISTORIES = sorted((Path(__file__).parents[1] / "fixtures" / "histories").glob("*.json"))


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "heysh-api"}, False),
        (ENDPOINT, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "console"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
    ],
)
def test_export_is_on_only_when_the_otel_variables_ask_for_otlp(
    environ: dict[str, str], on: bool
) -> None:
    assert export_requested(environ) is on


def test_the_service_is_named_for_the_process_unless_otel_service_name_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert tracer_provider(API_SERVICE).resource.attributes[SERVICE_NAME] == "heysh-api"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "heysh-api-eu")
    assert tracer_provider(API_SERVICE).resource.attributes[SERVICE_NAME] == "heysh-api-eu"


# A process that turns tracing on, makes one entry-point span and exits (which flushes).
ONE_SPAN = """
from opentelemetry import trace
from heysh.telemetry.tracing import WORKER_SERVICE, setup_tracing
assert setup_tracing(WORKER_SERVICE)
with trace.get_tracer("t").start_as_current_span("RunActivity:x", kind=trace.SpanKind.SERVER):
    pass
"""


def test_with_an_otlp_endpoint_set_spans_are_posted_there_over_http() -> None:
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
    environ["OTEL_EXPORTER_OTLP_HEADERS"] = "x-collector-key=collector-secret"
    try:
        subprocess.run([sys.executable, "-c", ONE_SPAN], env=environ, check=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    ((path, headers, body),) = received
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-collector-key"] == "collector-secret"  # the exporter read OTEL_* itself
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == WORKER_SERVICE
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == [
        "RunActivity:x"
    ]


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = tracer_provider(WORKER_SERVICE)
    add_exporter(provider, exporter, batch=False)
    enable_tracing(provider)
    try:
        yield provider, exporter
    finally:
        disable_tracing()
        provider.shutdown()


DETAIL = "duplicate key\nDETAIL: Failing row contains (Marie Curie discovered polonium in 1898)."


def test_a_store_call_outside_any_trace_records_nothing(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = traced
    with store_span("neo4j", "PING"):
        pass
    assert exporter.get_finished_spans() == ()


def test_a_failed_store_call_exports_the_exception_type_but_not_its_message(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("RunActivity:write_graph", kind=SpanKind.SERVER),
        pytest.raises(ValueError, match="polonium"),
        store_span("neo4j", "MERGE_CHUNKS"),
    ):
        raise ValueError(DETAIL)
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    failed = by_name["neo4j MERGE_CHUNKS"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None
    (event,) = failed.events
    assert dict(event.attributes or {}) == {
        "exception.type": "ValueError",
        "exception.escaped": "False",
    }
    assert dict(failed.attributes or {}) == {
        "db.system": "neo4j",
        "db.operation.name": "MERGE_CHUNKS",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_runs_replay_with_the_tracing_interceptor(
    path: Path, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    interceptors = [i for i in temporal_interceptors() if isinstance(i, Interceptor)]
    assert interceptors
    history = load(path)
    result = await Replayer(workflows=WORKFLOWS, interceptors=interceptors).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{path.stem}: {result.replay_failure}"


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("operation_name", [{}, 7, True, ["Q"]])
async def test_an_operation_name_that_is_no_string_is_refused_and_still_traced(
    traced: tuple[TracerProvider, InMemorySpanExporter], operation_name: object
) -> None:
    _, exporter = traced
    settings = Settings(env=Environment.TEST)
    schema = build_schema(settings, ApiMetrics(settings))
    query = "query Q { __typename }"
    # The schema refuses it as it refuses an unknown name (the HTTP view answers 400).
    with pytest.raises(CannotGetOperationTypeError):
        await schema.execute(query, operation_name=operation_name)  # type: ignore[arg-type]
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert span.name == "GraphQL"
    assert "graphql.operation.name" not in (span.attributes or {})
