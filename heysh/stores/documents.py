"""Document metadata in Supabase Postgres: rows, status, content and counts.

The pipeline's intermediates are apart: chunks in ``heysh.stores.chunks``, the resolution
journal in ``heysh.stores.journal``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from heysh.stores.postgres import (
    RUN_FIELDS,
    NewRun,
    PageKey,
    PooledStore,
    RunRow,
    fetch_row,
    insert_run,
)

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


DOCUMENT_FIELDS = tuple(f.name for f in fields(DocumentRow))
DOCUMENT_COLUMNS = ", ".join(f"d.{name}" for name in DOCUMENT_FIELDS)
# `domain`: the document's (the first parameter's) domain, share-locked only while it is ACTIVE,
# so a concurrent deleteDomain either sees the change's run or the change sees it DELETING.
_ACTIVE_DOMAIN_OF_DOCUMENT = (
    "with domain as (select m.id from heysh.domains m"
    "   join heysh.documents x on x.domain_id = m.id"
    "   where x.id = %s and m.status = 'ACTIVE' for share of m)"
)
# Up to a limit of documents of each of the given domains, newest first, after a keyset
# position (the parameters: domain ids, created_at twice, id, limit), as `d`.
_NEWEST_IN_DOMAINS = (
    " from unnest(%s::uuid[]) as wanted(domain_id)"
    " cross join lateral (select * from heysh.documents x"
    "   where x.domain_id = wanted.domain_id"
    "   and (%s::timestamptz is null or (x.created_at, x.id) < (%s, %s::uuid))"
    "   order by x.created_at desc, x.id desc limit %s) d"
)


class DocumentStore(PooledStore):
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
            created = await fetch_row(
                conn,
                DocumentRow,
                "with domain as (select id from heysh.domains"
                "   where id = %s and status = 'ACTIVE' for share)"
                " insert into heysh.documents as d (id, domain_id, title, content,"
                " content_hash, size_bytes, created_by)"
                " select %s, domain.id, %s, %s, %s, %s, %s from domain"
                " on conflict (domain_id, content_hash) do nothing"
                f" returning {DOCUMENT_COLUMNS}",
                (domain_id, document_id, title, content, content_hash, size_bytes, created_by),
            )
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
            document = await fetch_row(
                conn,
                DocumentRow,
                f"{_ACTIVE_DOMAIN_OF_DOCUMENT}"
                " update heysh.documents as d set status = %s, error = null,"
                " updated_at = now() from domain"
                " where d.id = %s and d.domain_id = domain.id"
                " and d.status::text = any(%s::text[])"
                f" returning {DOCUMENT_COLUMNS}",
                (document_id, to.value, document_id, [s.value for s in allowed]),
            )
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
        """The documents among ``document_ids`` in domains ``user_id`` is a member of."""
        return await self._member_rows(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS} from heysh.documents d",
            "d.domain_id",
            user_id,
            document_ids,
        )

    async def in_domains(
        self, domain_ids: Sequence[UUID], limit: int, after: PageKey | None
    ) -> list[DocumentRow]:
        """Up to ``limit`` documents of each domain, newest first, after a keyset position."""
        created_at, row_id = (after.created_at, after.id) if after else (None, None)
        return await self._fetch(
            DocumentRow,
            f"select {DOCUMENT_COLUMNS}{_NEWEST_IN_DOMAINS}",
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
                f"select {DOCUMENT_COLUMNS}, {run_columns}{_NEWEST_IN_DOMAINS}"
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
                f"{_ACTIVE_DOMAIN_OF_DOCUMENT}"
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
