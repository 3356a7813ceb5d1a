"""OpenTelemetry tracing: one trace from a GraphQL request through the workflow it starts and
every activity, down to the store and model calls they make.

Off unless the standard ``OTEL_*`` variables ask for OTLP export (``export_requested``): then
``setup_tracing`` installs a TracerProvider that batches spans to the OTLP/HTTP exporter, which
reads the other ``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout, certificate) itself.
While off, nothing here touches the request path: the schema gets no extension, the Temporal
client no interceptor, psycopg no instrumentation, and ``store_span`` hands back a shared no-op.

Spans carry names (GraphQL operation and root field, workflow and activity types, Cypher
statement names, SQL text without its parameters, Weaviate and OpenAI operations) and ids
(``heysh.document_id``, ``heysh.domain_id``). Never document text, titles, search queries,
argument values or secrets; exception messages are cut down to the exception's type on the way
out (``_ExceptionTypesOnly``), since a driver's message can quote a row.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from functools import partial
from inspect import isawaitable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from graphql import GraphQLResolveInfo, OperationType
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.span import Span, TraceState
from opentelemetry.util.types import Attributes, AttributeValue
from strawberry.extensions import SchemaExtension
from strawberry.relay import GlobalID, GlobalIDValueError
from strawberry.types.execution import ExecutionContext
from temporalio import client as temporal_client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

log = logging.getLogger(__name__)

API_SERVICE = "heysh-api"
WORKER_SERVICE = "heysh-worker"

_P = ParamSpec("_P")
_R = TypeVar("_R")
_C = TypeVar("_C")

# The process's tracer while tracing is on; None (the default) means off.
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_NO_SPAN = contextlib.nullcontext()


# --- on or off ------------------------------------------------------------------------------------


def export_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for OTLP trace export: an OTLP endpoint is set,
    OTEL_TRACES_EXPORTER (default otlp) lists otlp, and OTEL_SDK_DISABLED is not true."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "otlp" not in exporters:
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def setup_tracing(service: str) -> bool:
    """At process start (`heysh api`, `heysh worker`): when the OTEL_* variables ask for it,
    export spans over OTLP/HTTP as ``service`` (OTEL_SERVICE_NAME overrides). True when on."""
    if not export_requested():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        log.warning(
            "tracing: OTEL_EXPORTER_OTLP_PROTOCOL=%s ignored; heysh sends http/protobuf", protocol
        )
    provider = tracer_provider(service)
    exporter = OTLPSpanExporter()
    add_exporter(provider, exporter)
    trace.set_tracer_provider(provider)
    enable_tracing(provider)
    log.info(
        "tracing: spans go over OTLP/HTTP to %s as %s",
        _address(
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        ),
        provider.resource.attributes.get(SERVICE_NAME),
    )
    return True


def tracer_provider(service: str) -> SdkTracerProvider:
    """An SDK provider for ``service`` that starts traces only at entry points (see
    ``_EntryPointRoots``) and otherwise samples as OTEL_TRACES_SAMPLER says."""
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    # The SDK's own reading of OTEL_TRACES_SAMPLER / _ARG (default parentbased_always_on).
    sampler = ParentBased(root=_EntryPointRoots(_get_from_env_or_default()))
    return SdkTracerProvider(resource=Resource.create(attributes), sampler=sampler)


def add_exporter(
    provider: SdkTracerProvider, exporter: SpanExporter, *, batch: bool = True
) -> None:
    """Send ``provider``'s spans to ``exporter`` (in batches, off the request path, unless
    ``batch`` is false, as tests want), with exception messages cut to their type."""
    if batch:
        processor: SpanProcessor = BatchSpanProcessor(exporter)
    else:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(_ExceptionTypesOnly(processor))


def enable_tracing(provider: TracerProvider) -> None:
    """Trace with ``provider`` from now on: schemas, Temporal clients and Postgres pools built
    after this call are traced. Tests pass a provider of their own."""
    global _provider, _tracer
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    if _provider is not None:
        disable_tracing()
    _provider, _tracer = provider, provider.get_tracer("heysh")
    # Connections opened from now on trace each statement's text; parameters are never
    # captured (capture_parameters defaults to off, and is kept off here explicitly).
    PsycopgInstrumentor().instrument(tracer_provider=provider, capture_parameters=False)


def disable_tracing() -> None:
    """Stop tracing what is built from now on (for tests; a process traces for its life)."""
    global _provider, _tracer
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    if _provider is not None:
        PsycopgInstrumentor().uninstrument()
    _provider = _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


# --- hooks: each empty while tracing is off -------------------------------------------------------


def graphql_tracing() -> list[Callable[[], SchemaExtension]]:
    """The schema extension that opens each request's trace, or none."""
    if _tracer is None:
        return []
    return [partial(GraphQLTracing, tracer=_tracer)]


def temporal_interceptors() -> list[temporal_client.Interceptor]:
    """The Temporal client's tracing interceptor, or none. Workers built on the client take it
    too, so one interceptor carries the trace from start to workflow to activity."""
    if _tracer is None:
        return []
    return [_TemporalTracing(_tracer)]


def store_span(
    system: str, operation: str, attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[object]:
    """A client span around one call to a store or a model API (``system``: neo4j, weaviate,
    openai). ``operation`` and ``attributes`` name what is done, never the data it is done to."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    prefix = "gen_ai" if system == "openai" else "db"
    return tracer.start_as_current_span(
        f"{system} {operation}",
        kind=SpanKind.CLIENT,
        attributes={
            f"{prefix}.system": system,
            f"{prefix}.operation.name": operation,
            **(attributes or {}),
        },
    )


def traced(
    system: str,
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """``store_span(system, <method name>)`` around every call of an async method."""

    def decorate(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        operation = method.__name__

        @functools.wraps(method)
        async def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with store_span(system, operation):
                return await method(*args, **kwargs)

        return call

    return decorate


def untraced(check: Callable[[_C], Awaitable[None]]) -> Callable[[_C], Awaitable[None]]:
    """A pool's connection check with instrumentation suppressed: run on every checkout, it
    would double the Postgres spans with empty statements. ``check`` itself while off."""
    if _tracer is None:
        return check
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    async def quiet(connection: _C) -> None:
        with suppress_instrumentation():
            await check(connection)

    return quiet


# --- GraphQL --------------------------------------------------------------------------------------

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
# Global ids among a root field's arguments that become span attributes (heysh ids are UUIDs).
_ID_ATTRIBUTES = {"Domain": "heysh.domain_id", "Document": "heysh.document_id"}


class GraphQLTracing(SchemaExtension):
    """A server span per operation and a span per root field, current while the field resolves
    (so the workflow a mutation starts continues the trace). Nested fields get none: a page of
    50 documents would otherwise cost hundreds of spans, and every sync resolver an awaitable.

    Strawberry's OpenTelemetryExtension is not used: it records the query text and every
    argument, where a document's content can be (inline or as a variable's value), and a span
    per resolver made a query of 200 objects x 4 fields take 4.3x as long (its sync variant
    3.4x; this extension 1.07x, spans recorded but not exported). This records the operation's
    type and name and the domain and document ids among the root arguments.
    """

    def __init__(
        self, *, tracer: Tracer, execution_context: ExecutionContext | None = None
    ) -> None:
        self._tracer = tracer
        self._operation: Span | None = None
        if execution_context is not None:
            self.execution_context = execution_context

    def on_operation(self) -> Iterator[None]:
        span = self._operation = self._tracer.start_span("GraphQL", kind=SpanKind.SERVER)
        try:
            yield
        finally:
            self._finish(span)

    def _finish(self, span: Span) -> None:
        context = self.execution_context
        name = context.operation_name
        name = name if isinstance(name, str) and _NAME.fullmatch(name) else None
        kind: str | None = None
        with contextlib.suppress(Exception):  # no operation type when the document did not parse
            kind = context.operation_type.value
        span.update_name(" ".join(part for part in ("GraphQL", kind, name) if part))
        if kind is not None:
            span.set_attribute("graphql.operation.type", kind)
        if name is not None:
            span.set_attribute("graphql.operation.name", name)
        result = context.result
        errors = result.errors if result is not None else context.pre_execution_errors
        if errors:
            codes = sorted({str((e.extensions or {}).get("code", "GRAPHQL_ERROR")) for e in errors})
            span.set_attribute("graphql.error.codes", codes)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: str,
        **kwargs: Any,
    ) -> Any:
        if (
            info.path.prev is not None
            or info.field_name.startswith("__")
            or info.operation.operation is OperationType.SUBSCRIPTION
            or self._operation is None
        ):
            return _next(root, info, *args, **kwargs)
        return self._root_field(_next, root, info, args, kwargs)

    async def _root_field(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        args: Sequence[str],
        kwargs: dict[str, Any],
    ) -> Any:
        assert self._operation is not None
        with self._tracer.start_as_current_span(
            f"resolve {info.parent_type.name}.{info.field_name}",
            context=trace.set_span_in_context(self._operation),
            attributes={"graphql.field.name": info.field_name, **_argument_ids(kwargs)},
        ):
            result = _next(root, info, *args, **kwargs)
            if isawaitable(result):
                result = await result
            return result


def _argument_ids(arguments: Mapping[str, Any]) -> dict[str, str]:
    """heysh.domain_id / heysh.document_id from the global ids among the arguments and the
    fields of an ``input`` argument; any other value (text, content, uploads) is ignored."""
    values = list(arguments.items())
    nested = arguments.get("input")
    if isinstance(nested, Mapping):
        values.extend(nested.items())
    found: dict[str, str] = {}
    for key, value in values:
        if not (isinstance(value, str) and key.lower().endswith("id")):
            continue
        try:
            global_id = GlobalID.from_id(value)
            node_id = str(uuid.UUID(global_id.node_id))
        except (GlobalIDValueError, ValueError):
            continue
        attribute = _ID_ATTRIBUTES.get(global_id.type_name)
        if attribute is not None:
            found.setdefault(attribute, node_id)
    return found


# --- Temporal -------------------------------------------------------------------------------------

_SUBJECT_FIELDS = (("document_id", "heysh.document_id"), ("domain_id", "heysh.domain_id"))


class _TemporalTracing(TracingInterceptor):
    """temporalio's interceptor (StartWorkflow, RunWorkflow, StartActivity, RunActivity spans,
    the context carried in Temporal headers), plus the document and domain ids of the request a
    workflow is started with and of each activity's input on its StartWorkflow/RunActivity span."""

    def intercept_client(
        self, next: temporal_client.OutboundInterceptor
    ) -> temporal_client.OutboundInterceptor:
        return super().intercept_client(_StartSubjects(next))

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        # Inside temporalio's interceptor: the current span is the RunActivity span.
        return super().intercept_activity(_RunSubjects(next))


class _StartSubjects(temporal_client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporal_client.StartWorkflowInput
    ) -> temporal_client.WorkflowHandle[Any, Any]:
        _tag_subjects(input.args)
        return await super().start_workflow(input)


class _RunSubjects(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        _tag_subjects(input.args)
        return await super().execute_activity(input)


def _tag_subjects(args: Sequence[Any]) -> None:
    """The ids on the one dataclass a heysh workflow or activity takes, on the current span."""
    span = trace.get_current_span()
    if not args or not span.is_recording():
        return
    for field, attribute in _SUBJECT_FIELDS:
        value = getattr(args[0], field, None)
        if isinstance(value, str) and value:
            span.set_attribute(attribute, value)


# --- what the provider records and exports -------------------------------------------------------


class _EntryPointRoots(Sampler):
    """Traces start only at entry points, server spans (a GraphQL operation, an activity run);
    a client call outside any trace (a pool's connection check, the api's event feed reads,
    start-up checks) records nothing rather than a one-span trace each. Entry points are then
    sampled by ``delegate``."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is not SpanKind.SERVER:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"EntryPointRoots{{{self._delegate.get_description()}}}"


_EXCEPTION_KEPT = ("exception.type", "exception.escaped")


class _ExceptionTypesOnly(SpanProcessor):
    """Hands ``inner`` each span with its exception events reduced to the exception's type and
    its status to the bare code. Messages and stack traces can quote a driver's reply (Postgres's
    DETAIL shows a failing row) or a model's answer, which hold document text; the logs, which
    carry the trace id, say more."""

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._inner.on_end(_without_messages(span))

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _without_messages(span: ReadableSpan) -> ReadableSpan:
    has_exception = any(event.name == "exception" for event in span.events)
    if not has_exception and span.status.description is None:
        return span
    events = [
        Event(
            event.name,
            {k: v for k, v in (event.attributes or {}).items() if k in _EXCEPTION_KEPT},
            event.timestamp,
        )
        if event.name == "exception"
        else event
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _address(url: str) -> str:
    """scheme://host[:port] of an endpoint, which may carry credentials in its user part."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "(unset)"
