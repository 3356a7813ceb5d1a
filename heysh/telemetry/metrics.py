"""The api's Prometheus metrics and its `/metrics` endpoint.

One `ApiMetrics` per app, on a registry of its own (no process-global state: tests build
several apps in one process). Each HTTP request costs one histogram observation, each GraphQL
operation one more plus one counter increment per error; nothing is done per field. The gauges
of open WebSockets and subscriptions are read from the hub when scraped.

Exposure: in dev and test `/metrics` is open on the api's port. In production the api collects
and serves metrics only when `HEYSH_METRICS_TOKEN` is set, and `/metrics` then answers only
`Authorization: Bearer <token>`; unset, there is no such route (404) and nothing is measured.
A configured token is required in every environment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from heysh.auth import AuthError, bearer_token
from heysh.config import Settings

if TYPE_CHECKING:
    from heysh.hub import RunHub
    from heysh.stores.engine import WorkflowEngine

# Codes that mean the server failed, not the request: an operation with one is an "error".
SERVER_ERROR_CODES = frozenset(
    {
        "INTERNAL",
        "INTERNAL_SERVER_ERROR",
        "STORE_UNAVAILABLE",
        "EMBEDDER_MISMATCH",
        "EMBEDDING_FAILED",
        "EXTRACTION_FAILED",
    }
)
# Operation names come from clients: only GraphQL names up to this length, and at most this many
# distinct ones per process, become label values; the rest are "other".
OPERATION_NAME_LENGTH = 64
OPERATION_NAMES = 200
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
_REFUSALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)

# Seconds. The api answers most requests in milliseconds; uploads of large documents take longer.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ApiMetrics:
    def __init__(self, settings: Settings) -> None:
        token = settings.metrics_token
        # Only a digest is kept: compared in constant time, and never printable by accident.
        self._token_digest = _digest(token.get_secret_value()) if token is not None else None
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)  # the process's memory, CPU, file descriptors, GC
        self.requests = Histogram(
            "heysh_http_request_duration_seconds",
            "HTTP requests served, by method, matched route and status.",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.operations = Histogram(
            "heysh_graphql_operation_duration_seconds",
            "GraphQL queries and mutations, by type, operation name and outcome "
            "(ok, user_error, error).",
            ["operation_type", "operation", "outcome"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "heysh_graphql_errors",
            "Errors in GraphQL responses (HTTP and WebSocket), by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        self.workflow_starts = Counter(
            "heysh_workflow_starts",
            "Workflow runs this api started, by kind (WorkflowRun.kind).",
            ["kind"],
            registry=self.registry,
        )
        self.websocket_connections = Gauge(
            "heysh_websocket_connections",
            "Open WebSocket connections.",
            registry=self.registry,
        )
        self.subscriptions = Gauge(
            "heysh_graphql_subscriptions",
            "Live subscriptions (workflowRun and domainEvents).",
            registry=self.registry,
        )
        self._operation_names: set[str] = set()
        self._workflow_kinds: dict[object, str] = {}

    # --- hooks the app calls -----------------------------------------------------------------

    def watch(self, hub: RunHub, engine: WorkflowEngine) -> None:
        """Count the runs ``engine`` starts; read the hub's subscriptions when scraped."""
        self.subscriptions.set_function(lambda: hub.subscriber_count)
        engine.on_start = self.workflow_started

    def workflow_started(self, workflow: Callable[..., Any]) -> None:
        """Count a run started with ``workflow`` (a workflow's run method)."""
        kind = self._workflow_kinds.get(workflow)
        if kind is None:
            kind = self._workflow_kinds[workflow] = workflow_kind(workflow)
        self.workflow_starts.labels(kind).inc()

    def count_errors(self, errors: Iterable[GraphQLError]) -> None:
        for error in errors:
            self.errors.labels(error_code(error)).inc()

    def count_code(self, code: str) -> None:
        self.errors.labels(code if _ERROR_CODE.fullmatch(code) else "OTHER").inc()

    def operation_label(self, name: object) -> str:
        """The label value for a client's operation name: bounded in length and in number."""
        if name is None:
            return "anonymous"
        # The request's operationName may be any JSON value; the server refuses all but strings.
        if (
            not isinstance(name, str)
            or len(name) > OPERATION_NAME_LENGTH
            or not _GRAPHQL_NAME.fullmatch(name)
        ):
            return "other"
        if name not in self._operation_names:
            if len(self._operation_names) >= OPERATION_NAMES:
                return "other"
            self._operation_names.add(name)
        return name

    # --- the endpoint ----------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        if self._token_digest is not None:
            try:
                given = bearer_token(request.headers.get("authorization"))
            except AuthError as exc:
                return JSONResponse(
                    {"error": str(exc)},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
            if not hmac.compare_digest(_digest(given), self._token_digest):
                return JSONResponse({"error": "wrong metrics token"}, status_code=403)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.registry), headers={"Content-Type": content_type})


def api_metrics(settings: Settings) -> ApiMetrics | None:
    """The app's metrics, or None where metrics are off (production without a token)."""
    return ApiMetrics(settings) if settings.metrics_enabled else None


def metrics_middleware(metrics: ApiMetrics | None) -> list[Middleware]:
    return [] if metrics is None else [Middleware(RequestMetrics, metrics=metrics)]


def metrics_routes(metrics: ApiMetrics | None) -> list[BaseRoute]:
    return [] if metrics is None else [Route("/metrics", metrics.endpoint, methods=["GET"])]


def operation_metrics(metrics: ApiMetrics | None) -> list[Callable[[], SchemaExtension]]:
    """The schema extension timing operations (a factory: one instance per request)."""
    return [] if metrics is None else [partial(OperationMetrics, metrics=metrics)]


class RequestMetrics:
    """ASGI middleware: times each HTTP request by its route's path (a template such as
    `/graphiql/assets/{version}/{name}`, never the raw URL), and counts open WebSockets."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.metrics.websocket_connections.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.websocket_connections.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(method, _route(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        # Refused before routing (the body limits answer 413 and 503 outside the router).
        route = next(
            (r for r in scope["app"].routes if r.matches(scope)[0] is not Match.NONE), None
        )
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class OperationMetrics(SchemaExtension):
    """Times each query and mutation and counts the codes of its errors.

    Listed before ErrorCodes, so it leaves the operation after the errors have their codes.
    Subscriptions are not timed (a lifetime is no latency). Over a WebSocket the errors of
    every streamed result are counted by HeyshSchema.stream instead, as they are sent.
    """

    def __init__(self, *, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except _REFUSALS:
            # Requests Strawberry cannot run (no query, an operation name the document lacks, a
            # type the transport forbids) leave here; the view refuses them (heysh/http.py).
            self._observe(started, None, "user_error")
            raise
        except Exception:
            self._observe(started, None, "error")
            raise
        self._observe(started, self.execution_context.result, None)

    def _observe(self, started: float, result: Any, failed: str | None) -> None:
        context = self.execution_context
        try:
            operation_type: OperationType | None = context.operation_type
        except RuntimeError:  # no document (a parse error) or no operation by the given name
            operation_type = None
        if operation_type is OperationType.SUBSCRIPTION:
            return
        errors: list[GraphQLError] = list(getattr(result, "errors", None) or [])
        if getattr(context.context, "websocket", None) is None:
            self.metrics.count_errors(errors)
        codes = {error_code(error) for error in errors}
        if failed is not None:
            outcome = failed
        elif codes & SERVER_ERROR_CODES:
            outcome = "error"
        else:
            outcome = "user_error" if errors else "ok"
        self.metrics.operations.labels(
            operation_type.value if operation_type is not None else "unknown",
            self.metrics.operation_label(context.operation_name),
            outcome,
        ).observe(time.perf_counter() - started)


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "OTHER"


def workflow_kind(workflow: Callable[..., Any]) -> str:
    """The run kind (RunWorkflow.kind, as WorkflowRun.kind shows it) of a workflow's run method,
    else its Temporal workflow type."""
    # temporalio marks a @workflow.run method with its definition; there is no public accessor.
    definition = getattr(workflow, "__temporal_workflow_definition", None)
    kind = getattr(getattr(definition, "cls", None), "kind", None) or getattr(
        definition, "name", None
    )
    return kind if isinstance(kind, str) else "other"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
