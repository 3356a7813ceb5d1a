"""The worker process: connects to every store, registers workflows and activities, runs."""

from __future__ import annotations

import asyncio
import logging

from temporalio.worker import Worker

from heysh.activities.documents import DocumentActivities
from heysh.activities.domains import DomainActivities
from heysh.activities.graph import GraphActivities
from heysh.activities.outages import StoreOutageInterceptor
from heysh.activities.runs import RunActivities
from heysh.config import Settings
from heysh.pipeline.embedding import Embedder
from heysh.pipeline.extraction import Extractor
from heysh.pipeline.factory import build_counter, build_embedder, build_extractor
from heysh.services import Services, open_services
from heysh.telemetry.worker_metrics import activity_metrics_interceptors, worker_runtime
from heysh.workflows.create_domain import CreateDomainWorkflow
from heysh.workflows.delete_document import DeleteDocumentWorkflow
from heysh.workflows.delete_domain import DeleteDomainWorkflow
from heysh.workflows.process_document import ProcessDocumentWorkflow
from heysh.workflows.rebuild_graph import RebuildGraphWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = [
    CreateDomainWorkflow,
    ProcessDocumentWorkflow,
    DeleteDocumentWorkflow,
    DeleteDomainWorkflow,
    RebuildGraphWorkflow,
]


def build_document_activities(
    services: Services, embedder: Embedder | None = None, extractor: Extractor | None = None
) -> DocumentActivities:
    settings = services.settings
    return DocumentActivities(
        services.documents,
        services.chunks,
        services.journal,
        services.graph,
        services.vectors,
        embedder or build_embedder(settings),
        extractor or build_extractor(settings),
        build_counter(settings),
        max_tokens=settings.chunk_max_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )


def build_worker(
    services: Services,
    task_queue: str | None = None,
    documents: DocumentActivities | None = None,
) -> Worker:
    domains = DomainActivities(
        services.postgres, services.graph, services.vectors, services.temporal
    )
    documents = documents or build_document_activities(services)
    return Worker(
        services.temporal,
        task_queue=task_queue or services.settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            *domains.all(),
            *documents.all(),
            *GraphActivities(services.documents, services.journal, services.graph).all(),
            *RunActivities(services.runs).all(),
        ],
        max_concurrent_activities=services.settings.extract_concurrency * 2,
        # First is outermost: the stage timer (when metrics are on) times the whole attempt.
        interceptors=[*activity_metrics_interceptors(services.settings), StoreOutageInterceptor()],
    )


async def prepare_stores(services: Services, embedder: Embedder | None = None) -> None:
    """Idempotent schema set-up the activities rely on (constraints, the chunk collection).

    The collection records the embedder (by default the configured one) that fills it; an
    embedder other than the recorded one raises ``EmbedderMismatchError`` naming both.
    """
    embedder = embedder or build_embedder(services.settings)
    await services.graph.ensure_schema()
    await services.vectors.ensure_collection(embedder.name, embedder.dimensions)


async def main(settings: Settings, stop: asyncio.Event | None = None) -> None:
    # The runtime (when HEYSH_WORKER_METRICS_ADDRESS is set) serves the worker's metrics.
    async with open_services(settings, runtime=worker_runtime(settings)) as services:
        if settings.worker_metrics_address is not None:
            log.info("worker metrics at http://%s/metrics", settings.worker_metrics_address)
        embedder = build_embedder(settings)
        # A ConfigError (an embedder other than the collection's) stops start-up in one line.
        await prepare_stores(services, embedder)
        worker = build_worker(services, documents=build_document_activities(services, embedder))
        log.info("worker polling task queue %s", services.settings.task_queue)
        async with worker:
            await (stop or asyncio.Event()).wait()
