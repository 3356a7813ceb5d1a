"""Tracing against the real stack: one trace from a GraphQL mutation through ProcessDocument to
each activity, with the Postgres, Neo4j, Weaviate and OpenAI calls as children; no content or
secret in any span; and with tracing off, nothing hooked in anywhere."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from openai import AsyncOpenAI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from heysh.config import Settings
from heysh.pipeline.embedding import OpenAIEmbedder
from heysh.pipeline.extraction import LlmExtractor
from heysh.schema import build_schema
from heysh.services import Services, open_services
from heysh.telemetry.tracing import (
    API_SERVICE,
    GraphQLTracing,
    add_exporter,
    disable_tracing,
    enable_tracing,
    setup_tracing,
    tracer_provider,
    tracing_enabled,
)
from heysh.worker import build_document_activities, build_worker
from tests.support.documents import active_domain, fixture_text, raw_id, wait_document
from tests.support.graphql import gateway
from tests.support.openai_server import OpenAIServer, chat_handler

pytestmark = pytest.mark.integration

# Words that appear nowhere but in the document: any span holding them holds its text.
MARKER = "The heliotrope ledger of Quillmarsh was countersigned by Ottoline Vantreese in 1874."
CONTENT = fixture_text("curie.md") + "\n\n" + MARKER + "\n"
TITLE = "Vantreese correspondence"  # inline in the query text, which spans must not carry
ADD = """
mutation AddTracedDocument($domainId: ID!, $content: String!) {
  addDocument(input: {domainId: $domainId, title: "TITLE", content: $content}) {
    __typename
    ... on AddDocumentSuccess { document { id } run { id } }
    ... on UserError { code message } } }
""".replace("TITLE", TITLE)
EXTRACTION = json.dumps(
    {
        "entities": [
            {"name": "Marie Curie", "type": "PERSON", "description": None},
            {"name": "Warsaw", "type": "LOCATION", "description": None},
        ],
        "relations": [{"source": "Marie Curie", "target": "Warsaw", "type": "BORN_IN"}],
    }
)
# The activity whose work each store call is part of (its nearest RunActivity ancestor).
EXPECTED_PARENTS = {
    ("postgresql", "embed_chunks"),  # reads the chunks, stores their vectors
    ("openai", "embed_chunks"),
    ("weaviate", "index_chunks"),
    ("openai", "extract_chunks"),
    ("neo4j", "write_graph"),
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory, as `setup_tracing` would set it up for OTLP."""
    exporter = InMemorySpanExporter()
    provider = tracer_provider(API_SERVICE)
    add_exporter(provider, exporter, batch=False)
    enable_tracing(provider)
    try:
        yield exporter
    finally:
        disable_tracing()
        provider.shutdown()


async def test_one_trace_runs_from_the_mutation_through_process_document_to_every_activity(
    settings: Settings, services: Services, spans: InMemorySpanExporter
) -> None:
    queue = f"trace-{uuid.uuid4().hex[:8]}"
    openai_key = f"sk-test-{secrets.token_urlsafe(24)}"
    traced_settings = settings.model_copy(
        update={"task_queue": queue, "openai_api_key": SecretStr(openai_key)}
    )
    with OpenAIServer() as server:
        server.route("POST", "/v1/chat/completions", chat_handler(lambda request: EXTRACTION))
        model = AsyncOpenAI(api_key=openai_key, base_url=server.base_url, max_retries=0)
        # Opened with tracing on: its Temporal client carries the interceptor (and so does the
        # worker built on it), its Postgres connections are instrumented.
        async with open_services(traced_settings) as traced:
            activities = build_document_activities(
                traced,
                embedder=OpenAIEmbedder(model, dimensions=384),
                extractor=LlmExtractor(model, "local-model"),
            )
            async with (
                gateway(traced_settings) as api,
                build_worker(traced, task_queue=queue, documents=activities),
            ):
                domain = await active_domain(api, "tess", "Tracing")
                token = api.token("tess")
                added = (
                    await api.data(ADD, {"domainId": domain, "content": CONTENT}, token=token)
                )["addDocument"]
                assert added["__typename"] == "AddDocumentSuccess", added
                document = await wait_document(api, "tess", added["document"]["id"])
    assert document["status"] == "READY", document
    document_id, domain_id = raw_id(added["document"]["id"]), raw_id(domain)
    ran = await activities_run(services, raw_id(added["run"]["id"]))
    finished = list(spans.get_finished_spans())
    by_id = {s.context.span_id: s for s in finished if s.context is not None}

    # The mutation opens the trace; everything below belongs to it.
    (operation,) = [s for s in finished if s.name == "GraphQL mutation AddTracedDocument"]
    assert operation.kind is trace.SpanKind.SERVER
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "AddTracedDocument"
    assert operation.resource.attributes["service.name"] == API_SERVICE
    trace_id = trace_of(operation)
    in_trace = [s for s in finished if trace_of(s) == trace_id]

    def chain(span: ReadableSpan) -> list[str]:
        names, current = [], span
        while current.parent is not None and current.parent.span_id in by_id:
            current = by_id[current.parent.span_id]
            names.append(current.name)
        return names

    def named(name: str) -> ReadableSpan:
        (found,) = [s for s in in_trace if s.name == name]
        return found

    field = named("resolve Mutation.addDocument")
    assert chain(field) == [operation.name]
    assert attributes(field)["heysh.domain_id"] == domain_id
    start = named("StartWorkflow:ProcessDocument")
    assert chain(start) == [field.name, operation.name]
    assert attributes(start)["heysh.document_id"] == document_id
    assert attributes(start)["heysh.domain_id"] == domain_id
    run = named("RunWorkflow:ProcessDocument")
    assert chain(run)[-3:] == [start.name, field.name, operation.name]

    # A RunActivity span for every activity the run scheduled, and its local one, in the trace.
    runs = [s for s in in_trace if s.name.startswith("RunActivity:")]
    assert {s.name.removeprefix("RunActivity:") for s in runs} == ran | {"record_run_events"}
    for span in runs:
        assert chain(span)[-3:] == [start.name, field.name, operation.name], chain(span)
        if span.name != "RunActivity:record_run_events":
            assert attributes(span)["heysh.document_id"] == document_id, span.name
    batches = [s for s in runs if s.name.endswith(("embed_chunks", "index_chunks"))]
    assert batches
    assert all(attributes(s)["heysh.domain_id"] == domain_id for s in batches)

    # Store and model calls are children of the activity that made them.
    seen = set()
    for span in in_trace:
        found = attributes(span)
        system = found.get("db.system") or found.get("gen_ai.system")
        if system is None:
            continue
        activity = next((name for name in chain(span) if name.startswith("RunActivity:")), None)
        if activity is not None:
            seen.add((system, activity.removeprefix("RunActivity:")))
    assert seen >= EXPECTED_PARENTS, sorted(seen)

    # Statements are recorded without their parameters; no span holds the document, its title
    # (written inline in the query text) or a secret, in a name, attribute or event.
    statements = {
        str(attributes(s).get("db.statement") or attributes(s).get("db.query.text"))
        for s in finished
        if attributes(s).get("db.system") == "postgresql"
    }
    assert any(s.startswith("update heysh.chunks set embedding = %s") for s in statements)
    assert "" not in statements  # the pool's check on every checkout is no statement to trace
    assert not any("parameters" in key for s in finished for key in attributes(s))
    forbidden = {
        "document marker": MARKER,
        "title": TITLE,
        "openai key": openai_key,
        "jwt secret": secret(settings.supabase_jwt_secret),
        "bearer token": token,
        "database url": settings.database_url.get_secret_value(),
    }
    for span in finished:
        for text in span_texts(span):
            for what, value in forbidden.items():
                assert value not in text, f"{what} in span {span.name!r}: {text[:200]!r}"
            # Nor any long piece of the document (chunk text, a sentence).
            assert len(text) < 24 or text not in CONTENT, f"content in {span.name!r}: {text!r}"


async def test_without_otel_variables_nothing_is_hooked_in(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    assert setup_tracing(API_SERVICE) is False
    assert not tracing_enabled()
    # No SDK provider was installed: the API's proxy still stands in, exporting nothing.
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    extensions = build_schema(settings).extensions
    assert not any(getattr(e, "func", e) is GraphQLTracing for e in extensions)
    async with open_services(settings) as untraced:
        assert untraced.temporal.config()["interceptors"] == []
        async with untraced.postgres._pool.connection() as connection:
            assert type(connection.cursor()) is psycopg.AsyncCursor


async def activities_run(services: Services, workflow_id: str) -> set[str]:
    """The activity types the run scheduled, from its Temporal history."""
    names = set()
    async for event in services.temporal.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.add(event.activity_task_scheduled_event_attributes.activity_type.name)
    return names


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def span_texts(span: ReadableSpan) -> Iterator[str]:
    """Every string a span exports: its name, status, attributes, events' and links' attributes,
    and its resource's attributes."""
    yield span.name
    if span.status.description:
        yield span.status.description
    sources: list[Any] = [span.attributes, span.resource.attributes]
    sources += [event.attributes for event in span.events]
    sources += [link.attributes for link in span.links]
    for source in sources:
        for value in (source or {}).values():
            yield from _strings(value)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for item in value:
            yield from _strings(item)


def secret(value: SecretStr | None) -> str:
    assert value is not None
    return value.get_secret_value()
