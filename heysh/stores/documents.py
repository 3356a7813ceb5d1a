"""Documents and their pipeline intermediates in Supabase Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from heysh.stores.postgres import (
    RUN_FIELDS,
    NewRun,
    PageKey,
    RunRow,
    fetch_rows,
    insert_run,
)

_Row = TypeVar("_Row")
# Messages larger than this go over a connection of their own (see _connection_for).
_LARGE_MESSAGE_BYTES = 1024 * 1024


class DocumentStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"
    DELETING = "DELETING"


@dataclass(frozen=True)
class DocumentRow:
    id: UUID
    domain_id: UUID
    title: str
    content_hash: str
    size_bytes: int
    status: DocumentStatus
    error: str | None
    chunk_count: int | None
    entity_count: int | None
    relationship_count: int | None
    created_by: UUID
    created_at: datetime
    processed_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", DocumentStatus(self.status))


@dataclass(frozen=True)
class ChunkRow:
    id: UUID
    chunk_index: int
    start_offset: int
    end_offset: int
    token_count: int
    text: str
    embedding: list[float] | None


@dataclass(frozen=True)
class NewChunk:
    id: UUID
    index: int
    start: int
    end: int
    token_count: int
    text: str


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


DOCUMENT_FIELDS = tuple(f.name for f in fields(DocumentRow))
DOCUMENT_COLUMNS = ", ".join(f"d.{name}" for name in DOCUMENT_FIELDS)


class DocumentStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    # --- metadata -------------------------------------------------------------------------------

    async def add_document(
        self,
        document_id: UUID,
        domain_id: UUID,
        title: str,
        content: str,
        content_hash: str,
        created_by: UUID,
        run_id: str,
        *,
        size_bytes: int | None = None,
    ) -> tuple[DocumentRow, RunRow | None] | None:
        """Insert the document and its first run; an identical one in the domain wins instead.

        Returns the document and, when this call created it, its run (else None); None when the
        domain is not ACTIVE. The domain row is share-locked, so a concurrent deleteDomain either
        sees this document's run or this insert sees the domain DELETING. ``size_bytes`` is the
        content's UTF-8 length when the caller knows it (saves encoding a large text once more).
        """
        if size_bytes is None:
            size_bytes = len(content.encode())
        async with self._connection_for(size_bytes) as conn, conn.transaction():
            async with conn.cursor(row_factory=class_row(DocumentRow)) as cur:
                await cur.execute(
                    "with domain as (select id from heysh.domains"
                    "   where id = %s and status = 'ACTIVE' for share)"
                    " insert into heysh.documents as d (id, domain_id, title, content,"
                    " content_hash, size_bytes, created_by)"
                    " select %s, domain.id, %s, %s, %s, %s, %s from domain"
                    " on conflict (domain_id, content_hash) do nothing"
                    f" returning {DOCUMENT_COLUMNS}",
                    (
                        domain_id,
                        document_id,
                        title,
                        content,
                        content_hash,
                        size_bytes,
                        created_by,
                    ),
                )
                created = await cur.fetchone()
            if created is not None:
                run = await insert_run(
                    conn, run_id, domain_id, "PROCESS_DOCUMENT", document_id, created_by
                )
                return created, run
        existing = await self._fetch(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS} from heysh.documents d"
            " join heysh.domains m on m.id = d.domain_id and m.status = 'ACTIVE'"
            " where d.domain_id = %s and d.content_hash = %s",
            (domain_id, content_hash),
        )
        return (existing[0], None) if existing else None

    @asynccontextmanager
    async def _connection_for(self, message_bytes: int) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection, or for a message over _LARGE_MESSAGE_BYTES one of its own.

        libpq keeps its send buffer as large as the largest message it has sent, so a pooled
        connection that sent a document would hold that much memory for good.
        """
        if message_bytes <= _LARGE_MESSAGE_BYTES:
            async with self._pool.connection() as conn:
                yield conn
            return
        conninfo, kwargs = self._pool.conninfo, self._pool.kwargs
        assert isinstance(conninfo, str)  # as create_pool makes the pool
        assert isinstance(kwargs, dict)
        async with await AsyncConnection.connect(conninfo, **kwargs) as conn:
            yield conn

    async def transition(
        self,
        document_id: UUID,
        allowed: Sequence[DocumentStatus],
        to: DocumentStatus,
        run: NewRun,
    ) -> tuple[DocumentRow, RunRow] | None:
        """Move the document to ``to`` and record the run that does it, in one statement each.

        Only from a status in ``allowed`` and only while its domain is ACTIVE: of two concurrent
        calls exactly one wins, and None tells the loser.
        """
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=class_row(DocumentRow)) as cur:
                await cur.execute(
                    "with domain as (select m.id from heysh.domains m"
                    "   join heysh.documents x on x.domain_id = m.id"
                    "   where x.id = %s and m.status = 'ACTIVE' for share of m)"
                    " update heysh.documents as d set status = %s, error = null,"
                    " updated_at = now() from domain"
                    " where d.id = %s and d.domain_id = domain.id"
                    " and d.status::text = any(%s::text[])"
                    f" returning {DOCUMENT_COLUMNS}",
                    (document_id, to.value, document_id, [s.value for s in allowed]),
                )
                document = await cur.fetchone()
            if document is None:
                return None
            row = await insert_run(
                conn, run.id, document.domain_id, run.kind, document_id, run.started_by
            )
            return document, row

    async def get(self, document_id: UUID) -> DocumentRow | None:
        rows = await self._fetch(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS} from heysh.documents d where d.id = %s",
            (document_id,),
        )
        return rows[0] if rows else None

    async def visible(self, user_id: UUID, document_ids: Sequence[UUID]) -> list[DocumentRow]:
        return await self._fetch(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS} from heysh.documents d"
            " join heysh.domain_members m on m.domain_id = d.domain_id and m.user_id = %s"
            " where d.id = any(%s)",
            (user_id, list(document_ids)),
        )

    async def in_domains(
        self, domain_ids: Sequence[UUID], limit: int, after: PageKey | None
    ) -> list[DocumentRow]:
        """Up to ``limit`` documents of each domain, newest first, after a keyset position."""
        created_at, row_id = (after.created_at, after.id) if after else (None, None)
        return await self._fetch(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS} from unnest(%s::uuid[]) as wanted(domain_id)"
            " cross join lateral (select * from heysh.documents x"
            "   where x.domain_id = wanted.domain_id"
            "   and (%s::timestamptz is null or (x.created_at, x.id) < (%s, %s::uuid))"
            "   order by x.created_at desc, x.id desc limit %s) d",
            (list(domain_ids), created_at, created_at, row_id, limit),
        )

    async def in_domains_with_runs(
        self, domain_ids: Sequence[UUID], limit: int, after: PageKey | None
    ) -> list[tuple[DocumentRow, RunRow | None]]:
        """As ``in_domains``, each document with its latest run, in the same statement (a page
        that shows every document's lastRun costs no extra round trip)."""
        created_at, row_id = (after.created_at, after.id) if after else (None, None)
        run_columns = ", ".join(f"r.{c}" for c in RUN_FIELDS)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"select {DOCUMENT_COLUMNS}, {run_columns}"
                " from unnest(%s::uuid[]) as wanted(domain_id)"
                " cross join lateral (select * from heysh.documents x"
                "   where x.domain_id = wanted.domain_id"
                "   and (%s::timestamptz is null or (x.created_at, x.id) < (%s, %s::uuid))"
                "   order by x.created_at desc, x.id desc limit %s) d"
                " left join lateral (select * from heysh.workflow_runs w"
                "   where w.subject_id = d.id order by w.created_at desc limit 1) r on true",
                (list(domain_ids), created_at, created_at, row_id, limit),
            )
            rows = await cur.fetchall()
        # Plain tuples, split by position: this read serves every page that shows lastRun.
        width = len(DOCUMENT_FIELDS)
        return [
            (
                DocumentRow(*row[:width]),
                RunRow(*row[width:]) if row[width] is not None else None,
            )
            for row in rows
        ]

    async def ids_in_domain(self, domain_id: UUID) -> list[UUID]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select id from heysh.documents where domain_id = %s", (domain_id,)
            )
            return [row[0] for row in await cur.fetchall()]

    async def ids_page(
        self, domain_id: UUID, status: DocumentStatus, after: UUID | None, size: int
    ) -> list[UUID]:
        """The domain's documents in ``status``, in id order, a page at a time."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select id from heysh.documents where domain_id = %s and status = %s"
                " and (%s::uuid is null or id > %s) order by id limit %s",
                (domain_id, status.value, after, after, size),
            )
            return [row[0] for row in await cur.fetchall()]

    async def set_resolution_counts(
        self, document_id: UUID, entities: int, relationships: int
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "update heysh.documents set entity_count = %s, relationship_count = %s,"
                " updated_at = now() where id = %s",
                (entities, relationships, document_id),
            )

    async def content(self, document_id: UUID) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select content from heysh.documents where id = %s", (document_id,)
            )
            row = await cur.fetchone()
            return str(row[0]) if row else None

    async def set_status(
        self,
        document_id: UUID,
        status: DocumentStatus,
        error: str | None = None,
        counts: tuple[int, int, int] | None = None,
        *,
        expected: Sequence[DocumentStatus] | None = None,
    ) -> bool:
        """Set the status; with ``expected``, only from one of those (a run owns the document
        only while it holds one of its run's statuses, so a late write never undoes another's)."""
        chunk_count, entity_count, relationship_count = counts or (None, None, None)
        allowed = [s.value for s in expected] if expected is not None else None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "update heysh.documents set status = %s, error = %s, updated_at = now(),"
                " chunk_count = coalesce(%s, chunk_count),"
                " entity_count = coalesce(%s, entity_count),"
                " relationship_count = coalesce(%s, relationship_count),"
                " processed_at = case when %s = 'READY' then now() else processed_at end"
                " where id = %s"
                " and (%s::text[] is null or status::text = any(%s::text[]))",
                (
                    status.value,
                    error,
                    chunk_count,
                    entity_count,
                    relationship_count,
                    status.value,
                    document_id,
                    allowed,
                    allowed,
                ),
            )
            return cur.rowcount == 1

    async def begin_processing(self, document_id: UUID) -> bool:
        """PENDING (or PROCESSING, on a retry) to PROCESSING, only while the domain is ACTIVE."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "with domain as (select m.id from heysh.domains m"
                "   join heysh.documents x on x.domain_id = m.id"
                "   where x.id = %s and m.status = 'ACTIVE' for share of m)"
                " update heysh.documents d set status = 'PROCESSING', updated_at = now()"
                " from domain where d.id = %s and d.domain_id = domain.id"
                " and d.status in ('PENDING', 'PROCESSING')",
                (document_id, document_id),
            )
            return cur.rowcount == 1

    async def delete(self, document_id: UUID) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("delete from heysh.documents where id = %s", (document_id,))
            return cur.rowcount == 1

    # --- pipeline intermediates ----------------------------------------------------------------

    async def append_chunks(self, document_id: UUID, chunks: Sequence[NewChunk]) -> None:
        """Store a batch of chunks (after ``forget_intermediates`` cleared an earlier run's)."""
        async with (
            self._pool.connection() as conn,
            conn.cursor() as cur,
            cur.copy(
                "copy heysh.chunks (document_id, chunk_index, id, start_offset, end_offset,"
                " token_count, text) from stdin"
            ) as copy,
        ):
            for chunk in chunks:
                await copy.write_row(
                    (
                        document_id,
                        chunk.index,
                        chunk.id,
                        chunk.start,
                        chunk.end,
                        chunk.token_count,
                        chunk.text,
                    )
                )

    async def forget_intermediates(self, document_id: UUID) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await self._forget(conn, document_id)

    async def chunk_count(self, document_id: UUID) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select count(*) from heysh.chunks where document_id = %s", (document_id,)
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def chunks(
        self, document_id: UUID, start: int, end: int, *, with_embedding: bool = False
    ) -> list[ChunkRow]:
        embedding = "embedding" if with_embedding else "null::real[] as embedding"
        return await self._fetch(
            ChunkRow,
            "select id, chunk_index, start_offset, end_offset, token_count, text,"
            f" {embedding} from heysh.chunks where document_id = %s"
            " and chunk_index >= %s and chunk_index < %s order by chunk_index",
            (document_id, start, end),
        )

    async def save_embeddings(
        self, document_id: UUID, vectors: Sequence[tuple[int, list[float]]]
    ) -> None:
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "update heysh.chunks set embedding = %s::real[]"
                " where document_id = %s and chunk_index = %s",
                [(vector, document_id, index) for index, vector in vectors],
            )

    async def save_extractions(
        self, document_id: UUID, extractions: Sequence[tuple[int, dict[str, Any]]]
    ) -> None:
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "update heysh.chunks set extraction = %s"
                " where document_id = %s and chunk_index = %s",
                [(Jsonb(data), document_id, index) for index, data in extractions],
            )

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

    async def chunk_pages(
        self, document_id: UUID, size: int, *, with_embedding: bool = False
    ) -> AsyncIterator[list[ChunkRow]]:
        start = 0
        while page := await self.chunks(
            document_id, start, start + size, with_embedding=with_embedding
        ):
            yield page
            start = page[-1].chunk_index + 1

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

    @staticmethod
    async def _forget(conn: Any, document_id: UUID) -> None:
        for table in ("chunks", "document_entities", "document_relations"):
            await conn.execute(f"delete from heysh.{table} where document_id = %s", (document_id,))

    async def _fetch(self, row_type: type[_Row], sql: str, params: Sequence[Any]) -> list[_Row]:
        return await fetch_rows(self._pool, row_type, sql, params)
