"""Documents and their pipeline intermediates in Supabase Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from heysh.stores.postgres import RunRow, fetch_rows

_Row = TypeVar("_Row")


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


_DOCUMENT_COLUMNS = (
    "d.id, d.domain_id, d.title, d.content_hash, d.size_bytes, d.status, d.error,"
    " d.chunk_count, d.entity_count, d.relationship_count, d.created_by, d.created_at,"
    " d.processed_at"
)
_RUN_COLUMNS = "id, domain_id, kind, subject_id, started_by, created_at"


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
    ) -> tuple[DocumentRow, RunRow | None]:
        """Insert the document and its first run; an identical one in the domain wins instead.

        Returns the document and, when this call created it, its run (else None).
        """
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=class_row(DocumentRow)) as cur:
                await cur.execute(
                    "insert into heysh.documents as d (id, domain_id, title, content, content_hash,"
                    " size_bytes, created_by) values (%s, %s, %s, %s, %s, %s, %s)"
                    " on conflict (domain_id, content_hash) do nothing"
                    f" returning {_DOCUMENT_COLUMNS}",
                    (
                        document_id,
                        domain_id,
                        title,
                        content,
                        content_hash,
                        len(content.encode()),
                        created_by,
                    ),
                )
                created = await cur.fetchone()
            if created is not None:
                async with conn.cursor(row_factory=class_row(RunRow)) as cur:
                    await cur.execute(
                        "insert into heysh.workflow_runs (id, domain_id, kind, subject_id,"
                        " started_by) values (%s, %s, 'PROCESS_DOCUMENT', %s, %s)"
                        f" returning {_RUN_COLUMNS}",
                        (run_id, domain_id, document_id, created_by),
                    )
                    run = await cur.fetchone()
                return created, run
        existing = await self._fetch(
            DocumentRow,
            f"select {_DOCUMENT_COLUMNS} from heysh.documents d"
            " where d.domain_id = %s and d.content_hash = %s",
            (domain_id, content_hash),
        )
        return existing[0], None

    async def record_run(
        self, run_id: str, domain_id: UUID, kind: str, subject_id: UUID, started_by: UUID
    ) -> RunRow:
        rows = await self._fetch(
            RunRow,
            "insert into heysh.workflow_runs (id, domain_id, kind, subject_id, started_by)"
            f" values (%s, %s, %s, %s, %s) returning {_RUN_COLUMNS}",
            (run_id, domain_id, kind, subject_id, started_by),
        )
        return rows[0]

    async def get(self, document_id: UUID) -> DocumentRow | None:
        rows = await self._fetch(
            DocumentRow,
            f"select {_DOCUMENT_COLUMNS} from heysh.documents d where d.id = %s",
            (document_id,),
        )
        return rows[0] if rows else None

    async def visible(self, user_id: UUID, document_ids: Sequence[UUID]) -> list[DocumentRow]:
        return await self._fetch(
            DocumentRow,
            f"select {_DOCUMENT_COLUMNS} from heysh.documents d"
            " join heysh.domain_members m on m.domain_id = d.domain_id and m.user_id = %s"
            " where d.id = any(%s)",
            (user_id, list(document_ids)),
        )

    async def in_domains(self, domain_ids: Sequence[UUID], limit: int) -> list[DocumentRow]:
        """Up to ``limit`` newest documents of each domain, for a DataLoader."""
        return await self._fetch(
            DocumentRow,
            f"select {_DOCUMENT_COLUMNS} from unnest(%s::uuid[]) as wanted(domain_id)"
            " cross join lateral (select * from heysh.documents x"
            "   where x.domain_id = wanted.domain_id order by x.created_at desc limit %s) d",
            (list(domain_ids), limit),
        )

    async def ids_in_domain(self, domain_id: UUID) -> list[UUID]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select id from heysh.documents where domain_id = %s", (domain_id,)
            )
            return [row[0] for row in await cur.fetchall()]

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
    ) -> bool:
        chunk_count, entity_count, relationship_count = counts or (None, None, None)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "update heysh.documents set status = %s, error = %s, updated_at = now(),"
                " chunk_count = coalesce(%s, chunk_count),"
                " entity_count = coalesce(%s, entity_count),"
                " relationship_count = coalesce(%s, relationship_count),"
                " processed_at = case when %s = 'READY' then now() else processed_at end"
                " where id = %s",
                (
                    status.value,
                    error,
                    chunk_count,
                    entity_count,
                    relationship_count,
                    status.value,
                    document_id,
                ),
            )
            return cur.rowcount == 1

    async def delete(self, document_id: UUID) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("delete from heysh.documents where id = %s", (document_id,))
            return cur.rowcount == 1

    # --- pipeline intermediates ----------------------------------------------------------------

    async def replace_chunks(self, document_id: UUID, chunks: Sequence[NewChunk]) -> None:
        """Forget every earlier intermediate of this document, then store its chunks."""
        async with self._pool.connection() as conn, conn.transaction():
            await self._forget(conn, document_id)
            async with (
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

    async def extractions(self, document_id: UUID) -> list[tuple[UUID, dict[str, Any] | None]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select id, extraction from heysh.chunks where document_id = %s"
                " order by chunk_index",
                (document_id,),
            )
            return [(row[0], row[1]) for row in await cur.fetchall()]

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

    async def entity_rows(self, document_id: UUID, offset: int, limit: int) -> list[EntityRow]:
        return await self._fetch(
            EntityRow,
            "select entity_id, name, type, description, chunk_ids from heysh.document_entities"
            " where document_id = %s order by entity_id offset %s limit %s",
            (document_id, offset, limit),
        )

    async def relation_rows(self, document_id: UUID, offset: int, limit: int) -> list[RelationRow]:
        return await self._fetch(
            RelationRow,
            "select source_id, target_id, type, evidence from heysh.document_relations"
            " where document_id = %s order by source_id, target_id, type offset %s limit %s",
            (document_id, offset, limit),
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
