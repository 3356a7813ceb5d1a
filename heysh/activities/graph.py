"""Activities that rebuild a domain's knowledge graph from its documents' stored extractions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from temporalio import activity

from heysh.activities.documents import read_extractions, save_resolution, write_contributions
from heysh.activities.domains import DomainRef, StepOutcome
from heysh.pipeline.resolution import Resolver
from heysh.stores.documents import DocumentStatus, DocumentStore
from heysh.stores.graph import GraphStore
from heysh.stores.journal import JournalStore

DOCUMENT_PAGE = 200


@dataclass
class RebuildSummary:
    documents: int
    entities: int
    relationships: int


class GraphActivities:
    def __init__(self, documents: DocumentStore, journal: JournalStore, graph: GraphStore) -> None:
        self._documents = documents
        self._journal = journal
        self._graph = graph

    @activity.defn(name="resolve_domain")
    async def resolve_domain(self, ref: DomainRef) -> RebuildSummary:
        """Decide merges over every READY document of the domain, then re-resolve each document
        with them and replace its journal. Reads extractions only; writes Postgres only."""
        domain_id = UUID(ref.domain_id)
        domain = Resolver(ref.domain_id)
        async for document_id in self._ready_documents(domain_id):
            await read_extractions(self._journal, domain, document_id)
        merges = domain.merges()
        names = {entity.id: entity.name for entity in domain.finish(merges)[0]}
        del domain  # the per-document passes below need only the merges and names
        summary = RebuildSummary(0, 0, 0)
        async for document_id in self._ready_documents(domain_id):
            resolver = await read_extractions(self._journal, Resolver(ref.domain_id), document_id)
            entities, relations = resolver.finish(merges, names)
            await save_resolution(self._journal, document_id, entities, relations)
            await self._documents.set_resolution_counts(document_id, len(entities), len(relations))
            summary.documents += 1
            summary.entities += len(entities)
            summary.relationships += len(relations)
            activity.heartbeat(summary.documents)
        return summary

    @activity.defn(name="clear_domain_entities")
    async def clear_domain_entities(self, ref: DomainRef) -> StepOutcome:
        """Remove every entity (with its mentions and relationships); documents and chunks stay."""
        await self._graph.delete_domain_entities(ref.domain_id)
        return StepOutcome(changed=True)

    @activity.defn(name="write_domain_graph")
    async def write_domain_graph(self, ref: DomainRef) -> RebuildSummary:
        """Write every READY document's journal back into the graph; idempotent."""
        domain_id = UUID(ref.domain_id)
        summary = RebuildSummary(0, 0, 0)
        async for document_id in self._ready_documents(domain_id):
            await write_contributions(self._journal, self._graph, domain_id, document_id)
            summary.documents += 1
        counts = await self._graph.domain_counts(ref.domain_id)
        summary.entities, summary.relationships = counts.entities, counts.relationships
        return summary

    async def _ready_documents(self, domain_id: UUID) -> AsyncIterator[UUID]:
        after: UUID | None = None
        while page := await self._documents.ids_page(
            domain_id, DocumentStatus.READY, after, DOCUMENT_PAGE
        ):
            for document_id in page:
                yield document_id
            after = page[-1]

    def all(self) -> list[Callable[..., Any]]:
        return [self.resolve_domain, self.clear_domain_entities, self.write_domain_graph]
