"""Activities that create, compensate and activate a domain across the three stores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.exceptions import ApplicationError
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.stores.graph import GraphStore
from heysh.stores.postgres import DomainStatus, PostgresStore
from heysh.stores.vectors import VectorStore


@dataclass
class DomainRef:
    domain_id: str
    name: str = ""


@dataclass
class DomainStatusChange:
    domain_id: str
    status: str
    error: str | None = None


@dataclass
class StepOutcome:
    changed: bool


class DomainActivities:
    def __init__(self, postgres: PostgresStore, graph: GraphStore, vectors: VectorStore) -> None:
        self._postgres = postgres
        self._graph = graph
        self._vectors = vectors

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
        try:
            await self._vectors.ensure_tenant(ref.domain_id)
        except UnexpectedStatusCodeError as exc:
            raise _refused_by_weaviate(exc) from exc
        return StepOutcome(changed=True)

    @activity.defn(name="delete_vector_tenant")
    async def delete_vector_tenant(self, ref: DomainRef) -> StepOutcome:
        try:
            await self._vectors.delete_tenant(ref.domain_id)
        except UnexpectedStatusCodeError as exc:
            raise _refused_by_weaviate(exc) from exc
        return StepOutcome(changed=True)

    @activity.defn(name="delete_domain_metadata")
    async def delete_domain_metadata(self, ref: DomainRef) -> StepOutcome:
        return StepOutcome(changed=await self._postgres.delete_domain(UUID(ref.domain_id)))

    @activity.defn(name="set_domain_status")
    async def set_domain_status(self, change: DomainStatusChange) -> StepOutcome:
        changed = await self._postgres.set_domain_status(
            UUID(change.domain_id), DomainStatus(change.status), change.error
        )
        return StepOutcome(changed=changed)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.create_graph_domain,
            self.delete_graph_domain,
            self.create_vector_tenant,
            self.delete_vector_tenant,
            self.delete_domain_metadata,
            self.set_domain_status,
        ]


def _refused_by_weaviate(exc: UnexpectedStatusCodeError) -> Exception:
    # A 4xx means our request is wrong for this server; retrying cannot help.
    if 400 <= exc.status_code < 500 and exc.status_code != 429:
        return ApplicationError(
            f"Weaviate refused the request ({exc.status_code}): {exc.message}",
            type="WeaviateRefused",
            non_retryable=True,
        )
    return exc
