"""Where the graph came from, read from the pipeline's journal in Postgres: the chunks that state
a relationship and the documents that mention an entity. Also the domains' document counts.

Every read takes many parents at once (one statement per relation field, not per parent), and
each parent carries its domain, which every row read must belong to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from heysh.stores.documents import DOCUMENT_COLUMNS, DocumentRow
from heysh.stores.graph_values import ChunkKey
from heysh.stores.postgres import PageKey, PooledStore

_DOCUMENT_FIELDS = [f.name for f in fields(DocumentRow)]


@dataclass(frozen=True)
class RelationKey:
    source_id: UUID
    target_id: UUID
    type: str
    domain_id: UUID


@dataclass(frozen=True)
class DocumentCounts:
    documents: int
    ready: int


class ProvenanceStore(PooledStore):
    async def evidence_pages(
        self, keys: Sequence[tuple[RelationKey, ChunkKey | None]], fetch: int
    ) -> list[list[UUID]]:
        """Up to ``fetch`` ids of the chunks stating each relationship, in document order."""
        rows = await self._rows(
            "select k.pos, c.id from unnest(%s::int[], %s::uuid[], %s::uuid[], %s::text[],"
            "  %s::uuid[], %s::uuid[], %s::int[])"
            "  as k(pos, source_id, target_id, type, domain_id, after_document, after_index)"
            " cross join lateral (select c.id, c.document_id, c.chunk_index"
            "  from heysh.document_relations r"
            "  join heysh.documents d on d.id = r.document_id and d.domain_id = k.domain_id"
            "  cross join lateral unnest(r.evidence) as ev(chunk_id)"
            "  join heysh.chunks c on c.id = ev.chunk_id and c.document_id = r.document_id"
            "  where r.source_id = k.source_id and r.target_id = k.target_id and r.type = k.type"
            "   and (k.after_document is null"
            "        or (c.document_id, c.chunk_index) > (k.after_document, k.after_index))"
            "  order by c.document_id, c.chunk_index limit %s) c"
            " order by k.pos, c.document_id, c.chunk_index",
            (
                list(range(len(keys))),
                [k.source_id for k, _ in keys],
                [k.target_id for k, _ in keys],
                [k.type for k, _ in keys],
                [k.domain_id for k, _ in keys],
                [UUID(a.document_id) if a else None for _, a in keys],
                [a.index if a else None for _, a in keys],
                fetch,
            ),
        )
        found: list[list[UUID]] = [[] for _ in keys]
        for row in rows:
            found[row["pos"]].append(row["id"])
        return found

    async def entity_document_pages(
        self, keys: Sequence[tuple[UUID, UUID, PageKey | None]], fetch: int
    ) -> list[list[DocumentRow]]:
        """Up to ``fetch`` documents mentioning each (entity, domain), newest first."""
        rows = await self._rows(
            f"select k.pos, {DOCUMENT_COLUMNS} from unnest(%s::int[], %s::uuid[], %s::uuid[],"
            "  %s::timestamptz[], %s::uuid[]) as k(pos, entity_id, domain_id, after_at, after_id)"
            " cross join lateral (select x.* from heysh.documents x"
            "  where x.domain_id = k.domain_id and exists (select 1 from heysh.document_entities e"
            "   where e.document_id = x.id and e.entity_id = k.entity_id)"
            "  and (k.after_at is null or (x.created_at, x.id) < (k.after_at, k.after_id))"
            "  order by x.created_at desc, x.id desc limit %s) d"
            " order by k.pos, d.created_at desc, d.id desc",
            (
                list(range(len(keys))),
                [entity for entity, _, _ in keys],
                [domain for _, domain, _ in keys],
                [after.created_at if after else None for _, _, after in keys],
                [after.id if after else None for _, _, after in keys],
                fetch,
            ),
        )
        found: list[list[DocumentRow]] = [[] for _ in keys]
        for row in rows:
            found[row["pos"]].append(DocumentRow(**{f: row[f] for f in _DOCUMENT_FIELDS}))
        return found

    async def document_counts(self, domain_ids: Sequence[UUID]) -> dict[UUID, DocumentCounts]:
        rows = await self._rows(
            "select domain_id, count(*)::int as documents,"
            " (count(*) filter (where status = 'READY'))::int as ready"
            " from heysh.documents where domain_id = any(%s) group by domain_id",
            (list(domain_ids),),
        )
        return {r["domain_id"]: DocumentCounts(r["documents"], r["ready"]) for r in rows}

    async def _rows(self, sql: str, params: Sequence[object]) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()
