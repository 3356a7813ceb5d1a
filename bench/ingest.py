"""Ingestion benchmarks, each measured side by side in one run against the real local stack.

    .venv/bin/python bench/ingest.py [--copies 60] [--entities 5000] [--batch 5000]
                                     [--only pipeline|embedding|graph|observability]

Prints:
1. pipeline throughput (chunks/s) through the ProcessDocument workflow vs the same activities
   called directly without Temporal, and their ratio (goal: >= 0.8);
2. local MiniLM embedding throughput (tokens/s);
3. graph writes per second with UNWIND batches vs one MERGE per row, and their ratio;
4. pipeline throughput through the workflow with tracing and metrics on (spans of every
   activity and store call exported over OTLP/HTTP to a local collector, the worker's
   Prometheus exporter and pipeline counters) vs off, and their ratio (goal: >= 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from temporalio.testing import ActivityEnvironment
from temporalio.worker import Interceptor, Worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heysh.activities.documents import (  # noqa: E402
    GRAPH_WRITE_BATCH,
    ChunkRange,
    DocumentActivities,
    DocumentRef,
    DocumentStatusChange,
)
from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange  # noqa: E402
from heysh.activities.runs import RunActivities  # noqa: E402
from heysh.config import Settings  # noqa: E402
from heysh.local.stack import LocalStack  # noqa: E402
from heysh.pipeline.factory import build_counter, build_embedder  # noqa: E402
from heysh.services import Services, open_services  # noqa: E402
from heysh.stores.migrations import apply_migrations  # noqa: E402
from heysh.worker import WORKFLOWS, build_document_activities, prepare_stores  # noqa: E402
from heysh.workflows.process_document import (  # noqa: E402
    ProcessDocumentInput,
    ProcessDocumentWorkflow,
)

FIXTURES = ROOT / "tests" / "fixtures" / "documents"
OWNER = uuid.UUID("00000000-0000-4000-8000-00000000beef")


def corpus(copies: int) -> str:
    parts = [p.read_text() for p in sorted(FIXTURES.glob("*.md"))]
    return "\n\n".join(f"## Part {i}\n\n{parts[i % len(parts)]}" for i in range(copies))


async def new_domain(services: Services, name: str) -> str:
    domain_id = uuid.uuid4()
    await services.postgres.create_domain(domain_id, name, "", OWNER, f"bench-{domain_id}")
    domains = DomainActivities(
        services.postgres, services.graph, services.vectors, services.temporal
    )
    ref = DomainRef(str(domain_id), name)
    await domains.create_graph_domain(ref)
    await domains.create_vector_tenant(ref)
    await domains.set_domain_status(DomainStatusChange(str(domain_id), "ACTIVE"))
    return str(domain_id)


async def new_document(services: Services, domain_id: str, text: str) -> str:
    document_id = uuid.uuid4()
    digest = hashlib.sha256(text.encode()).hexdigest()
    await services.documents.add_document(
        document_id, uuid.UUID(domain_id), "bench", text, digest, OWNER, f"bench-{document_id}"
    )
    return str(document_id)


async def new_request(services: Services, name: str, text: str) -> ProcessDocumentInput:
    """A new domain holding one new document of ``text``, as the workflow's input."""
    settings = services.settings
    domain = await new_domain(services, name)
    return ProcessDocumentInput(
        document_id=await new_document(services, domain, text),
        domain_id=domain,
        title="bench",
        embed_batch=settings.embed_batch_size,
        index_batch=settings.index_batch_size,
        extract_batch=settings.extract_batch_size,
        extract_concurrency=settings.extract_concurrency,
    )


async def run_direct(
    activities: DocumentActivities, request: ProcessDocumentInput
) -> tuple[float, int]:
    """The workflow's steps, in the same order and batch sizes, without Temporal."""
    env = ActivityEnvironment()
    ref = DocumentRef(request.document_id, request.domain_id, request.title)
    started = time.perf_counter()
    await env.run(activities.begin_document, ref)
    total = (await env.run(activities.chunk_document, ref)).chunks

    def ranges(size: int) -> list[ChunkRange]:
        return [
            ChunkRange(request.document_id, request.domain_id, s, min(s + size, total))
            for s in range(0, total, size)
        ]

    for batch in ranges(request.embed_batch):
        await env.run(activities.embed_chunks, batch)
    for batch in ranges(request.index_batch):
        await env.run(activities.index_chunks, batch)
    limit = asyncio.Semaphore(request.extract_concurrency)

    async def extract(batch: ChunkRange) -> None:
        async with limit:
            await ActivityEnvironment().run(activities.extract_chunks, batch)

    await asyncio.gather(*(extract(b) for b in ranges(request.extract_batch)))
    await env.run(activities.resolve_document, ref)
    written = await env.run(activities.write_graph, ref)
    await env.run(
        activities.set_document_status,
        DocumentStatusChange(request.document_id, "READY", None, total, written.entities),
    )
    return time.perf_counter() - started, total


async def run_workflow(
    services: Services,
    activities: DocumentActivities,
    request: ProcessDocumentInput,
    interceptors: Sequence[Interceptor] = (),
    root: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> tuple[float, int]:
    """``root``: the span the start sits in (the api's GraphQL operation, when traced)."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with Worker(
        services.temporal,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *RunActivities(services.runs).all()],
        max_concurrent_activities=request.extract_concurrency * 2,
        interceptors=interceptors,
    ):
        started = time.perf_counter()
        # The run id new_document registered, so the run records its progress events in
        # Postgres as an api-started run does: their cost is part of what is measured.
        run_id = f"bench-{request.document_id}"
        with root():
            output = await services.temporal.execute_workflow(
                ProcessDocumentWorkflow.run, request, id=run_id, task_queue=queue
            )
        elapsed = time.perf_counter() - started
    if output.progress.error:
        raise RuntimeError(output.progress.error)
    recorded = await services.runs.events(run_id, 0)
    if len(recorded) != len(output.progress.events):
        raise RuntimeError(f"{len(recorded)} of {len(output.progress.events)} events recorded")
    return elapsed, output.summary["chunks"]


async def pipeline_ratio(services: Services, copies: int) -> None:
    activities = build_document_activities(services)
    text = corpus(copies)
    results: dict[str, list[float]] = {"direct": [], "workflow": []}
    # Round 0 warms both paths (model, connections, server caches) and is not counted; later
    # rounds alternate the order so neither path always runs on a warmer machine.
    for rnd in range(3):
        for path in ("direct", "workflow") if rnd % 2 == 0 else ("workflow", "direct"):
            request = await new_request(services, f"bench-{path}-{rnd}", text)
            if path == "direct":
                elapsed, chunks = await run_direct(activities, request)
            else:
                elapsed, chunks = await run_workflow(services, activities, request)
            if rnd > 0:
                results[path].append(chunks / elapsed)
            label = "warm-up" if rnd == 0 else f"round {rnd}"
            print(f"  {path:8s} {label}: {chunks} chunks in {elapsed:6.1f}s", flush=True)
    direct, workflow = (sum(v) / len(v) for v in (results["direct"], results["workflow"]))
    print(
        f"pipeline: workflow {workflow:.1f} chunks/s, direct {direct:.1f} chunks/s, "
        f"ratio {workflow / direct:.2f} (goal >= 0.8)"
    )


async def embedding_throughput(settings: Settings, copies: int) -> None:
    from tests.support.chunks import chunk_text

    counter = build_counter(settings)
    chunks = chunk_text(
        corpus(copies),
        counter,
        max_tokens=settings.chunk_max_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    texts = [c.text for c in chunks]
    tokens = sum(c.token_count for c in chunks)
    embedder = build_embedder(settings)
    await embedder.embed(texts[:8])  # warm-up
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    print(
        f"embedding ({embedder.name}): {tokens} tokens in {elapsed:.1f}s = "
        f"{tokens / elapsed:,.0f} tokens/s"
    )


async def graph_write_ratio(services: Services, count: int, batch: int) -> None:
    """Entities (each MERGEd with its MENTIONS edge, as the pipeline writes them) per second."""
    domain = await new_domain(services, "bench-graph")
    document = str(uuid.uuid4())
    await services.graph.merge_document(domain, document, "bench")
    warm_up = batch + 50  # one batch and some single rows first: plans compiled, caches warm
    chunks = [
        {"id": str(uuid.uuid4()), "index": i, "start": 0, "end": 1, "text": "x"}
        for i in range(2 * count + warm_up)
    ]
    for start in range(0, len(chunks), 5000):
        await services.graph.merge_chunks(domain, document, chunks[start : start + 5000])
    rows = [
        {
            "id": str(uuid.uuid4()),
            "name": f"Entity {i}",
            "type": "CONCEPT",
            "description": None,
            "chunk_ids": [chunk["id"]],
        }
        for i, chunk in enumerate(chunks)
    ]
    warm, batched, single = rows[:warm_up], rows[warm_up : warm_up + count], rows[-count:]
    await services.graph.merge_entities(domain, warm[:batch])
    for row in warm[batch:]:
        await services.graph.merge_entities(domain, [row])
    started = time.perf_counter()
    for start in range(0, count, batch):
        await services.graph.merge_entities(domain, batched[start : start + batch])
    unwind = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for row in single:
        await services.graph.merge_entities(domain, [row])
    per_row = count / (time.perf_counter() - started)
    written = await services.graph.domain_counts(domain)
    assert written.entities == written.mentions == len(rows), written
    print(
        f"graph writes: UNWIND batches of {batch} {unwind:,.0f} rows/s, one MERGE per row "
        f"{per_row:,.0f} rows/s, ratio {unwind / per_row:.1f}x (goal >= 100x)"
    )


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and keeps only the count of its bytes."""

    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        _Collector.received += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def observability_ratio(services: Services, copies: int) -> None:
    """The workflow path with tracing and metrics off (as unconfigured) vs on (as configured in
    production): each "on" round connects its own clients after switching tracing on, so the
    Temporal interceptors, the psycopg instrumentation and the metrics runtime are all in."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.trace import SpanKind

    from heysh.telemetry.tracing import (
        WORKER_SERVICE,
        add_exporter,
        disable_tracing,
        enable_tracing,
        tracer_provider,
    )
    from heysh.telemetry.worker_metrics import activity_metrics_interceptors, worker_runtime

    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    text = corpus(copies)
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for rnd in range(9):  # rounds differ by a few percent: 8 counted of each, interleaved
            for mode in ("off", "on") if rnd % 2 == 0 else ("on", "off"):
                settings = services.settings
                if mode == "on":
                    settings = settings.model_copy(
                        update={"worker_metrics_address": f"127.0.0.1:{_free_port()}"}
                    )
                    provider = tracer_provider(WORKER_SERVICE)
                    add_exporter(provider, OTLPSpanExporter(endpoint=endpoint))
                    enable_tracing(provider)
                # As the api starts a run: inside a GraphQL operation's span (a no-op when off).
                tracer = trace.get_tracer(
                    "bench", tracer_provider=provider if mode == "on" else None
                )
                root = functools.partial(
                    tracer.start_as_current_span, "GraphQL mutation", kind=SpanKind.SERVER
                )
                try:
                    async with open_services(
                        settings, runtime=worker_runtime(settings)
                    ) as round_services:
                        activities = build_document_activities(round_services)
                        request = await new_request(round_services, f"bench-obs-{mode}-{rnd}", text)
                        elapsed, chunks = await run_workflow(
                            round_services,
                            activities,
                            request,
                            activity_metrics_interceptors(settings),
                            root,
                        )
                finally:
                    if mode == "on":
                        provider.shutdown()  # flushes the last batch to the collector
                        disable_tracing()
                if rnd > 0:
                    results[mode].append(chunks / elapsed)
                label = "warm-up" if rnd == 0 else f"round {rnd}"
                print(f"  {mode:3s} {label}: {chunks} chunks in {elapsed:6.1f}s", flush=True)
    finally:
        collector.shutdown()
        collector.server_close()
    off, on = (sum(v) / len(v) for v in (results["off"], results["on"]))
    print(
        f"observability: on {on:.1f} chunks/s, off {off:.1f} chunks/s, ratio {on / off:.3f}"
        f" (goal >= 0.95); {_Collector.received / 1024:.0f} KiB of spans exported"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=60, help="fixture copies per document")
    parser.add_argument("--entities", type=int, default=5000, help="rows per graph-write method")
    parser.add_argument(
        "--batch", type=int, default=GRAPH_WRITE_BATCH, help="rows per UNWIND batch"
    )
    parser.add_argument(
        "--only",
        choices=["pipeline", "embedding", "graph", "observability"],
        help="run one benchmark",
    )
    args = parser.parse_args()

    stack = LocalStack.for_tests(Path(tempfile.mkdtemp(prefix="heysh-bench-")))
    stack.start()
    try:
        env = stack.settings_env()
        apply_migrations(env["HEYSH_DATABASE_URL"])
        settings = stack.test_settings()
        async with open_services(settings) as services:
            await prepare_stores(services)
            if args.only in (None, "pipeline"):
                await pipeline_ratio(services, args.copies)
            if args.only in (None, "embedding"):
                await embedding_throughput(settings, args.copies)
            if args.only in (None, "graph"):
                await graph_write_ratio(services, args.entities, args.batch)
            if args.only in (None, "observability"):
                await observability_ratio(services, args.copies)
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
