"""A document's chunks in Supabase Postgres: text and offsets as cut, then each one's embedding.

The first of the pipeline's intermediates; what extraction and resolution make of the chunks is
the journal (``heysh.stores.journal``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from uuid import UUID

from heysh.stores.postgres import PooledStore


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


class ChunkStore(PooledStore):
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
        """The document's chunks and the journal made from them, in one transaction."""
        async with self._pool.connection() as conn, conn.transaction():
            for table in ("chunks", "document_entities", "document_relations"):
                await conn.execute(
                    f"delete from heysh.{table} where document_id = %s", (document_id,)
                )

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

    async def chunk_pages(
        self, document_id: UUID, size: int, *, with_embedding: bool = False
    ) -> AsyncIterator[list[ChunkRow]]:
        start = 0
        while page := await self.chunks(
            document_id, start, start + size, with_embedding=with_embedding
        ):
            yield page
            start = page[-1].chunk_index + 1

    async def save_embeddings(
        self, document_id: UUID, vectors: Sequence[tuple[int, list[float]]]
    ) -> None:
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "update heysh.chunks set embedding = %s::real[]"
                " where document_id = %s and chunk_index = %s",
                [(vector, document_id, index) for index, vector in vectors],
            )
