"""Request-scoped DataLoaders: a page of N items costs one query per relation, not N."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from heysh.resolvers.runs import RunState, run_states
from heysh.stores.documents import DocumentRow
from heysh.stores.graph import ChunkNode, EntityNode, RelationshipNode
from heysh.stores.postgres import DomainRow, MemberRole, PageKey, RunRow

if TYPE_CHECKING:
    from heysh.services import Services

_GraphNode = TypeVar("_GraphNode", EntityNode, ChunkNode, RelationshipNode)
DocumentsPageKey = tuple[UUID, int, PageKey | None]  # (domain, rows to fetch, after)


class Loaders:
    """Every loader is bound to the caller, so cached rows never cross users."""

    def __init__(self, services: Services, user_id: UUID | None) -> None:
        self._services = services
        self._user_id = user_id
        self.domain: DataLoader[UUID, DomainRow | None] = DataLoader(self._domains)
        self.role: DataLoader[UUID, MemberRole | None] = DataLoader(self._roles)
        self.run: DataLoader[str, RunRow | None] = DataLoader(self._runs)
        self.latest_run: DataLoader[UUID, RunRow | None] = DataLoader(self._latest_runs)
        self.run_state: DataLoader[str, RunState] = DataLoader(self._run_states)
        self.document: DataLoader[UUID, DocumentRow | None] = DataLoader(self._documents)
        self.entity: DataLoader[str, EntityNode | None] = DataLoader(self._entities)
        self.chunk: DataLoader[str, ChunkNode | None] = DataLoader(self._chunks)
        self.relationship: DataLoader[str, RelationshipNode | None] = DataLoader(
            self._relationships
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
        shapes: dict[tuple[int, PageKey | None], list[UUID]] = {}
        for domain_id, fetch, after in keys:
            shapes.setdefault((fetch, after), []).append(domain_id)
        found: dict[DocumentsPageKey, list[DocumentRow]] = {}
        for (fetch, after), domain_ids in shapes.items():
            rows = await self._services.documents.in_domains(domain_ids, fetch, after)
            for domain_id in domain_ids:
                found[(domain_id, fetch, after)] = []
            for row in rows:
                found[(row.domain_id, fetch, after)].append(row)
        return [found[key] for key in keys]

    async def _entities(self, ids: Sequence[str]) -> list[EntityNode | None]:
        return await self._in_member_domains(ids, self._services.graph.entities)

    async def _chunks(self, ids: Sequence[str]) -> list[ChunkNode | None]:
        return await self._in_member_domains(ids, self._services.graph.chunks)

    async def _relationships(self, ids: Sequence[str]) -> list[RelationshipNode | None]:
        return await self._in_member_domains(ids, self._services.graph.relationships)

    async def _in_member_domains(
        self, ids: Sequence[str], fetch: Callable[[Sequence[str]], Awaitable[Sequence[_GraphNode]]]
    ) -> list[_GraphNode | None]:
        """Graph nodes in domains the caller belongs to; others are None, exactly like unknown
        ids (the graph knows nothing of membership, so the roles loader decides)."""
        if self._user_id is None:
            return [None] * len(ids)
        found = {node.id: node for node in await fetch(ids)}
        domains = {UUID(node.domain_id) for node in found.values()}
        roles = dict(zip(domains, await self.role.load_many(list(domains)), strict=True))
        return [
            node if node is not None and roles.get(UUID(node.domain_id)) is not None else None
            for node in (found.get(i) for i in ids)
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

    async def _run_states(self, ids: Sequence[str]) -> list[RunState]:
        runs = await self.run.load_many(list(ids))
        visible = [run for run in runs if run is not None]
        if len(visible) != len(ids):
            raise LookupError("run state requested for a run the caller cannot see")
        return await run_states(self._services.temporal, visible)
