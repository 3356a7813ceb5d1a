"""Activities that create, compensate and activate a domain across the three stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.stores.graph import GraphStore
from heysh.stores.postgres import DomainStatus, PostgresStore
from heysh.stores.vectors import VectorStore

RUN_PAGE = 200
STOP_POLL_SECONDS = 0.5


@dataclass
class DomainRef:
    domain_id: str
    name: str = ""


@dataclass
class DomainStatusChange:
    domain_id: str
    status: str
    error: str | None = None

    expected: list[str] | None = None  # only from one of these statuses


@dataclass
class StepOutcome:
    changed: bool


@dataclass
class StopRuns:
    domain_id: str
    except_run: str  # the deleting run itself


@dataclass
class StopOutcome:
    stopped: int


class DomainActivities:
    def __init__(
        self,
        postgres: PostgresStore,
        graph: GraphStore,
        vectors: VectorStore,
        temporal: TemporalClient,
    ) -> None:
        self._postgres = postgres
        self._graph = graph
        self._vectors = vectors
        self._temporal = temporal

    @activity.defn(name="create_graph_domain")
    async def create_graph_domain(self, ref: DomainRef) -> StepOutcome:
        await self._graph.merge_domain(ref.domain_id, ref.name)
        return StepOutcome(changed=True)

    @activity.defn(name="delete_graph_domain")
    async def delete_graph_domain(self, ref: DomainRef) -> StepOutcome:
        await self._graph.delete_domain(ref.domain_id)
        return StepOutcome(changed=True)

    @activity.defn(name="create_vector_tenant")
    async def create_vector_tenant(self, ref: DomainRef) -> StepOutcome:
        with _weaviate_refusals():
            await self._vectors.ensure_tenant(ref.domain_id)
        return StepOutcome(changed=True)

    @activity.defn(name="delete_vector_tenant")
    async def delete_vector_tenant(self, ref: DomainRef) -> StepOutcome:
        with _weaviate_refusals():
            await self._vectors.delete_tenant(ref.domain_id)
        return StepOutcome(changed=True)

    @activity.defn(name="delete_domain_metadata")
    async def delete_domain_metadata(self, ref: DomainRef) -> StepOutcome:
        return StepOutcome(changed=await self._postgres.delete_domain(UUID(ref.domain_id)))

    @activity.defn(name="set_domain_status")
    async def set_domain_status(self, change: DomainStatusChange) -> StepOutcome:
        expected = [DomainStatus(s) for s in change.expected] if change.expected else None
        changed = await self._postgres.set_domain_status(
            UUID(change.domain_id), DomainStatus(change.status), change.error, expected=expected
        )
        return StepOutcome(changed=changed)

    @activity.defn(name="stop_domain_runs")
    async def stop_domain_runs(self, request: StopRuns) -> StopOutcome:
        """Cancel every other run of the domain and wait until each has ended.

        Runs recorded before the domain turned DELETING are all listed here; a run whose workflow
        has not started yet finds the domain DELETING at its first step and ends without writing.
        """
        stopped, after = 0, None
        while page := await self._postgres.run_ids_page(
            UUID(request.domain_id), after, RUN_PAGE, exclude=request.except_run
        ):
            for run_id in page:
                stopped += await self._stop(run_id)
            after = page[-1]
        return StopOutcome(stopped=stopped)

    async def _stop(self, run_id: str) -> int:
        handle = self._temporal.get_workflow_handle(run_id)
        try:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                return 0
            await handle.cancel()
            while description.status == WorkflowExecutionStatus.RUNNING:
                activity.heartbeat(run_id)
                await asyncio.sleep(STOP_POLL_SECONDS)
                description = await handle.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return 0  # never started, or past retention: nothing running
            raise
        return 1

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.stop_domain_runs,
            self.create_graph_domain,
            self.delete_graph_domain,
            self.create_vector_tenant,
            self.delete_vector_tenant,
            self.delete_domain_metadata,
            self.set_domain_status,
        ]


@contextmanager
def _weaviate_refusals() -> Iterator[None]:
    try:
        yield
    except UnexpectedStatusCodeError as exc:
        raise _refused_by_weaviate(exc) from exc


def _refused_by_weaviate(exc: UnexpectedStatusCodeError) -> Exception:
    # A 4xx means our request is wrong for this server; retrying cannot help.
    if 400 <= exc.status_code < 500 and exc.status_code != 429:
        return ApplicationError(
            f"Weaviate refused the request ({exc.status_code}): {exc.message}",
            type="WeaviateRefused",
            non_retryable=True,
        )
    return exc
