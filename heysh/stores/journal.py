"""The resolution journal in Supabase Postgres: what extraction found in each chunk, and the
entities and relations resolution made of a document, the rows of what it contributed to the
graph. Graph writes and withdrawals page through it; delete, reprocess and cancel withdraw exactly
what it holds, then forget it (``ChunkStore.forget_intermediates``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from heysh.stores.postgres import PooledStore


@dataclass(frozen=True)
class EntityRow:
    entity_id: UUID
    name: str
    type: str
    description: str | None
    chunk_ids: list[UUID]


@dataclass(frozen=True)
class RelationRow:
    source_id: UUID
    target_id: UUID
    type: str
    evidence: list[UUID]


@dataclass(frozen=True)
class RelationWeight:
    source_id: UUID
    target_id: UUID
    type: str
    weight: int  # chunks stating it, summed over the domain's documents


@dataclass(frozen=True)
class WithdrawalImpact:
    relationships_deleted: int
    relationships_weakened: int
    entities_deleted: int
    entity_names: list[str]  # the first ``names`` of them, by name


class JournalStore(PooledStore):
    async def save_extractions(
        self, document_id: UUID, extractions: Sequence[tuple[int, dict[str, Any]]]
    ) -> None:
        """Each chunk's extraction (by chunk index), kept on its chunk row."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "update heysh.chunks set extraction = %s"
                " where document_id = %s and chunk_index = %s",
                [(Jsonb(data), document_id, index) for index, data in extractions],
            )

    async def extraction_pages(
        self, document_id: UUID, size: int
    ) -> AsyncIterator[list[tuple[UUID, dict[str, Any] | None]]]:
        """(chunk id, extraction or None) in chunk order, ``size`` chunks at a time."""
        start = 0
        while True:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "select chunk_index, id, extraction from heysh.chunks"
                    " where document_id = %s and chunk_index >= %s"
                    " order by chunk_index limit %s",
                    (document_id, start, size),
                )
                rows = await cur.fetchall()
            if not rows:
                return
            yield [(row[1], row[2]) for row in rows]
            start = rows[-1][0] + 1

    async def replace_resolution(
        self,
        document_id: UUID,
        entities: Sequence[EntityRow],
        relations: Sequence[RelationRow],
    ) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "delete from heysh.document_entities where document_id = %s", (document_id,)
            )
            await conn.execute(
                "delete from heysh.document_relations where document_id = %s", (document_id,)
            )
            async with conn.cursor() as cur:
                async with cur.copy(
                    "copy heysh.document_entities (document_id, entity_id, name, type,"
                    " description, chunk_ids) from stdin"
                ) as copy:
                    for e in entities:
                        await copy.write_row(
                            (document_id, e.entity_id, e.name, e.type, e.description, e.chunk_ids)
                        )
                async with cur.copy(
                    "copy heysh.document_relations (document_id, source_id, target_id, type,"
                    " evidence) from stdin"
                ) as copy:
                    for r in relations:
                        await copy.write_row(
                            (document_id, r.source_id, r.target_id, r.type, r.evidence)
                        )

    async def entity_pages(self, document_id: UUID, size: int) -> AsyncIterator[list[EntityRow]]:
        """The document's resolved entities, ``size`` at a time, in id order (keyset paging)."""
        after: UUID | None = None
        while page := await self._fetch(
            EntityRow,
            "select entity_id, name, type, description, chunk_ids from heysh.document_entities"
            " where document_id = %s and (%s::uuid is null or entity_id > %s)"
            " order by entity_id limit %s",
            (document_id, after, after, size),
        ):
            yield page
            after = page[-1].entity_id

    async def relation_pages(
        self, document_id: UUID, size: int
    ) -> AsyncIterator[list[RelationRow]]:
        """The document's resolved relations, ``size`` at a time, in key order (keyset paging)."""
        after: tuple[UUID, UUID, str] | None = None
        while page := await self.relation_page(document_id, after, size):
            yield page
            last = page[-1]
            after = (last.source_id, last.target_id, last.type)

    async def relation_page(
        self, document_id: UUID, after: tuple[UUID, UUID, str] | None, size: int
    ) -> list[RelationRow]:
        return await self._fetch(
            RelationRow,
            "select source_id, target_id, type, evidence from heysh.document_relations"
            " where document_id = %s"
            " and (%s::boolean or (source_id, target_id, type) > (%s::uuid, %s::uuid, %s::text))"
            " order by source_id, target_id, type limit %s",
            (document_id, after is None, *(after or (None, None, None)), size),
        )

    @asynccontextmanager
    async def relation_weights(
        self,
        domain_id: UUID,
        document_id: UUID,
        rows: Sequence[RelationRow],
        *,
        withdrawing: bool,
    ) -> AsyncIterator[list[RelationWeight]]:
        """The domain-wide weight of each relation in ``rows``, held while the caller writes it.

        A per-domain advisory lock is held until the block ends, so two documents writing the
        same relationship cannot interleave read and write and leave a stale weight. When
        ``withdrawing``, the document's own evidence is left out, and its rows for these relations
        are deleted when the block succeeds: a withdrawal cut short simply runs again.
        """
        keys = (
            [r.source_id for r in rows],
            [r.target_id for r in rows],
            [r.type for r in rows],
        )
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (str(domain_id),))
            async with conn.cursor(row_factory=class_row(RelationWeight)) as cur:
                await cur.execute(
                    "select k.source_id, k.target_id, k.type,"
                    " coalesce(sum(cardinality(r.evidence)), 0)::int as weight"
                    " from unnest(%s::uuid[], %s::uuid[], %s::text[])"
                    "  as k(source_id, target_id, type)"
                    " left join heysh.document_relations r on r.source_id = k.source_id"
                    "  and r.target_id = k.target_id and r.type = k.type"
                    "  and (not %s or r.document_id <> %s)"
                    " group by k.source_id, k.target_id, k.type",
                    (*keys, withdrawing, document_id),
                )
                weights = await cur.fetchall()
            yield weights
            if withdrawing:
                await conn.execute(
                    "delete from heysh.document_relations r using"
                    " unnest(%s::uuid[], %s::uuid[], %s::text[]) as k(source_id, target_id, type)"
                    " where r.document_id = %s and r.source_id = k.source_id"
                    " and r.target_id = k.target_id and r.type = k.type",
                    (*keys, document_id),
                )

    async def withdrawal_impact(self, document_id: UUID, names: int) -> WithdrawalImpact:
        """What withdrawing the document's journal would change, from the journal alone."""
        async with self._pool.connection() as conn, conn.transaction():
            # Bounded work inside a request: a dry run on a huge document stops, it does not hang.
            await conn.execute("set local statement_timeout = '10s'")
            cur = await conn.execute(
                "select count(*) filter (where remaining = 0),"
                " count(*) filter (where remaining > 0)"
                " from (select (select coalesce(sum(cardinality(o.evidence)), 0)"
                "   from heysh.document_relations o where o.source_id = r.source_id"
                "   and o.target_id = r.target_id and o.type = r.type"
                "   and o.document_id <> r.document_id) as remaining"
                "  from heysh.document_relations r where r.document_id = %s) as x",
                (document_id,),
            )
            relations = await cur.fetchone()
            cur = await conn.execute(
                "select e.name, count(*) over () from heysh.document_entities e"
                " where e.document_id = %s and not exists (select 1"
                "  from heysh.document_entities o where o.entity_id = e.entity_id"
                "  and o.document_id <> e.document_id)"
                " order by e.name limit %s",
                (document_id, max(names, 1)),
            )
            entities = await cur.fetchall()
        assert relations is not None
        return WithdrawalImpact(
            relationships_deleted=int(relations[0]),
            relationships_weakened=int(relations[1]),
            entities_deleted=int(entities[0][1]) if entities else 0,
            entity_names=[row[0] for row in entities[:names]],
        )

    async def resolution_counts(self, document_id: UUID) -> tuple[int, int]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select (select count(*) from heysh.document_entities where document_id = %s),"
                " (select count(*) from heysh.document_relations where document_id = %s)",
                (document_id, document_id),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0]), int(row[1])
