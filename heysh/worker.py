"""The worker process: connects to every store, registers workflows and activities, runs."""

from __future__ import annotations

import asyncio
import logging

from temporalio.worker import Worker

from heysh.activities.domains import DomainActivities
from heysh.config import Settings
from heysh.services import Services, open_services
from heysh.workflows.create_domain import CreateDomainWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = [CreateDomainWorkflow]


def build_worker(services: Services, task_queue: str | None = None) -> Worker:
    domains = DomainActivities(services.postgres, services.graph, services.vectors)
    return Worker(
        services.temporal,
        task_queue=task_queue or services.settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            domains.create_graph_domain,
            domains.delete_graph_domain,
            domains.create_vector_tenant,
            domains.delete_vector_tenant,
            domains.set_domain_status,
        ],
    )


async def prepare_stores(services: Services) -> None:
    """Idempotent schema set-up the activities rely on (constraints, the chunk collection)."""
    await services.graph.ensure_schema()
    await services.vectors.ensure_collection()


async def main(settings: Settings, stop: asyncio.Event | None = None) -> None:
    async with open_services(settings) as services:
        await prepare_stores(services)
        worker = build_worker(services)
        log.info("worker polling task queue %s", services.settings.task_queue)
        async with worker:
            await (stop or asyncio.Event()).wait()
