"""Request-scoped DataLoaders: a page of N items costs one query per relation, not N."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from heysh.stores.documents import DocumentRow
from heysh.stores.graph_values import (
    ChunkKey,
    ChunkNode,
    Direction,
    EntityNode,
    GraphStats,
    PageSlice,
    RelationshipNode,
)
from heysh.stores.postgres import DomainRow, MemberRole, PageKey, RunRow
from heysh.stores.provenance import DocumentCounts, RelationKey

if TYPE_CHECKING:
    from heysh.services import Services

_GraphNode = TypeVar("_GraphNode", EntityNode, ChunkNode, RelationshipNode)
# (domain, rows to fetch, after, with each document's latest run)
DocumentsPageKey = tuple[UUID, int, PageKey | None, bool]
_Slice = TypeVar("_Slice", bound=Hashable)
_Filters = TypeVar("_Filters", bound=Hashable)
_Row = TypeVar("_Row")
PagedLoader = DataLoader[tuple[_Slice, int, _Filters], list[_Row]]
NoFilters = tuple[()]
EntityFilters = tuple[str | None, str | None]  # (type, name contains)
RelationshipFilters = tuple[Direction, tuple[str, ...] | None]
EvidenceSlice = tuple[RelationKey, ChunkKey | None]
EntityDocumentsSlice = tuple[UUID, UUID, PageKey | None]  # (entity, domain, after)


def paged(
    batch: Callable[[list[_Slice], int, _Filters], Awaitable[list[list[_Row]]]],
) -> DataLoader[tuple[_Slice, int, _Filters], list[_Row]]:
    """A loader of pages keyed by (parent slice, rows to fetch, filters): every parent asking
    for the same page size and filters is read in one ``batch`` call."""

    async def load(keys: Sequence[tuple[_Slice, int, _Filters]]) -> list[list[_Row]]:
        groups: dict[tuple[int, _Filters], list[_Slice]] = {}
        for part, fetch, filters in keys:
            groups.setdefault((fetch, filters), []).append(part)
        results = await asyncio.gather(
            *(batch(parts, fetch, filters) for (fetch, filters), parts in groups.items())
        )
        found: dict[tuple[_Slice, int, _Filters], list[_Row]] = {}
        for ((fetch, filters), parts), pages in zip(groups.items(), results, strict=True):
            for part, rows in zip(parts, pages, strict=True):
                found[(part, fetch, filters)] = rows
        return [found[key] for key in keys]

    return DataLoader(load)


@dataclass(frozen=True)
class DomainStats:
    documents: DocumentCounts
    graph: GraphStats


class Loaders:
    """Every loader is bound to the caller, so cached rows never cross users."""

    def __init__(self, services: Services, user_id: UUID | None) -> None:
        self._services = services
        self._user_id = user_id
        self._memberships: asyncio.Future[dict[UUID, MemberRole]] | None = None
        # Documents' latest runs read with their page: Document.lastRun takes them without an await.
        self.prefetched_runs: dict[str, RunRow | None] = {}  # by the Document's id
        self.domain: DataLoader[UUID, DomainRow | None] = DataLoader(self._domains)
        self.role: DataLoader[UUID, MemberRole | None] = DataLoader(self._roles)
        self.run: DataLoader[str, RunRow | None] = DataLoader(self._runs)
        self.latest_run: DataLoader[UUID, RunRow | None] = DataLoader(self._latest_runs)
        self.document: DataLoader[UUID, DocumentRow | None] = DataLoader(self._documents)
        self.entity: DataLoader[str, EntityNode | None] = DataLoader(self._entities)
        self.chunk: DataLoader[str, ChunkNode | None] = DataLoader(self._chunks)
        self.relationship: DataLoader[str, RelationshipNode | None] = DataLoader(
            self._relationships
        )
        self.domain_stats: DataLoader[UUID, DomainStats] = DataLoader(self._domain_stats)
        # Relation pages: only ever asked for parents already proven visible.
        graph, provenance = services.graph, services.provenance
        self.domain_entities: PagedLoader[PageSlice, EntityFilters, EntityNode] = paged(
            lambda s, n, f: graph.entity_pages("domain", s, n, type=f[0], name_contains=f[1])
        )
        self.document_entities: PagedLoader[PageSlice, NoFilters, EntityNode] = paged(
            lambda s, n, _: graph.entity_pages("document", s, n)
        )
        self.chunk_entities: PagedLoader[PageSlice, NoFilters, EntityNode] = paged(
            lambda s, n, _: graph.entity_pages("chunk", s, n)
        )
        self.entity_neighbors: PagedLoader[PageSlice, NoFilters, EntityNode] = paged(
            lambda s, n, _: graph.entity_pages("neighbors", s, n)
        )
        self.document_chunks: PagedLoader[PageSlice, NoFilters, ChunkNode] = paged(
            lambda s, n, _: graph.chunk_pages("document", s, n)
        )
        self.entity_mentions: PagedLoader[PageSlice, NoFilters, ChunkNode] = paged(
            lambda s, n, _: graph.chunk_pages("mentions", s, n)
        )
        self.entity_relationships: PagedLoader[PageSlice, RelationshipFilters, RelationshipNode] = (
            paged(lambda s, n, f: graph.relationship_pages(s, n, direction=f[0], types=f[1]))
        )
        self.relationship_evidence: PagedLoader[EvidenceSlice, NoFilters, UUID] = paged(
            lambda s, n, _: provenance.evidence_pages(s, n)
        )
        self.entity_documents: PagedLoader[EntityDocumentsSlice, NoFilters, DocumentRow] = paged(
            lambda s, n, _: provenance.entity_document_pages(s, n)
        )
        # Keyed by (domain, rows to fetch, keyset position): one query per distinct page shape.
        self.domain_documents: DataLoader[DocumentsPageKey, list[DocumentRow]] = DataLoader(
            self._domain_documents
        )

    async def _domains(self, ids: Sequence[UUID]) -> list[DomainRow | None]:
        if self._user_id is None:
            return [None] * len(ids)
        rows = await self._services.postgres.visible_domains(self._user_id, ids)
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _documents(self, ids: Sequence[UUID]) -> list[DocumentRow | None]:
        if self._user_id is None:
            return [None] * len(ids)
        rows = await self._services.documents.visible(self._user_id, ids)
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _domain_documents(self, keys: Sequence[DocumentsPageKey]) -> list[list[DocumentRow]]:
        # Only called for domains already proven visible.
        shapes: dict[tuple[int, PageKey | None, bool], list[UUID]] = {}
        for domain_id, fetch, after, with_runs in keys:
            shapes.setdefault((fetch, after, with_runs), []).append(domain_id)
        found: dict[DocumentsPageKey, list[DocumentRow]] = {}
        documents = self._services.documents
        for (fetch, after, with_runs), domain_ids in shapes.items():
            for domain_id in domain_ids:
                found[(domain_id, fetch, after, with_runs)] = []
            if with_runs:
                for row, run in await documents.in_domains_with_runs(domain_ids, fetch, after):
                    self.latest_run.prime(row.id, run)
                    self.prefetched_runs[str(row.id)] = run
                    found[(row.domain_id, fetch, after, with_runs)].append(row)
            else:
                for row in await documents.in_domains(domain_ids, fetch, after):
                    found[(row.domain_id, fetch, after, with_runs)].append(row)
        return [found[key] for key in keys]

    async def _entities(self, ids: Sequence[str]) -> list[EntityNode | None]:
        return await self._in_member_domains(ids, self._services.graph.entities)

    async def _chunks(self, ids: Sequence[str]) -> list[ChunkNode | None]:
        return await self._in_member_domains(ids, self._services.graph.chunks)

    async def _relationships(self, ids: Sequence[str]) -> list[RelationshipNode | None]:
        return await self._in_member_domains(ids, self._services.graph.relationships)

    async def _in_member_domains(
        self,
        ids: Sequence[str],
        fetch: Callable[[Sequence[str], Sequence[str]], Awaitable[Sequence[_GraphNode]]],
    ) -> list[_GraphNode | None]:
        """Graph nodes in domains the caller belongs to; others are None, exactly like unknown
        ids. The graph knows nothing of membership, so the caller's domains go into the read:
        a known id elsewhere and an unknown id cost the same two statements."""
        if self._user_id is None:
            return [None] * len(ids)
        domains = await self.member_domains()
        found = {node.id: node for node in await fetch(ids, [str(d) for d in domains])}
        return [found.get(i) for i in ids]

    async def member_domains(self) -> dict[UUID, MemberRole]:
        """The caller's domains and roles, read once per request (and primed into ``role``)."""
        if self._memberships is None:
            self._memberships = asyncio.ensure_future(self._load_memberships())
        return await self._memberships

    async def _load_memberships(self) -> dict[UUID, MemberRole]:
        assert self._user_id is not None
        memberships = await self._services.postgres.memberships(self._user_id)
        for domain_id, role in memberships.items():
            self.role.prime(domain_id, role)
        return memberships

    async def _domain_stats(self, ids: Sequence[UUID]) -> list[DomainStats]:
        # Only called for domains already proven visible.
        counts, graph = await asyncio.gather(
            self._services.provenance.document_counts(ids),
            self._services.graph.domain_stats([str(i) for i in ids]),
        )
        return [
            DomainStats(counts.get(i, DocumentCounts(0, 0)), graph.get(str(i), GraphStats(0, 0, 0)))
            for i in ids
        ]

    async def _roles(self, ids: Sequence[UUID]) -> list[MemberRole | None]:
        if self._user_id is None:
            return [None] * len(ids)
        roles = await self._services.postgres.roles(self._user_id, ids)
        return [roles.get(i) for i in ids]

    async def _runs(self, ids: Sequence[str]) -> list[RunRow | None]:
        if self._user_id is None:
            return [None] * len(ids)
        # Postgres text cannot hold NUL, and no run id heysh issues has one: such an id is junk.
        storable = [i for i in ids if "\0" not in i]
        rows = await self._services.postgres.visible_runs(self._user_id, storable)
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _latest_runs(self, subject_ids: Sequence[UUID]) -> list[RunRow | None]:
        # Only called for subjects already proven visible, so no membership join is needed.
        latest = await self._services.postgres.latest_runs(subject_ids)
        return [latest.get(i) for i in subject_ids]
