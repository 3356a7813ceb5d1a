"""Activities of the document pipeline: each reads its inputs from the stores by id and writes
its results back, so workflows carry ids and small summaries only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar
from uuid import UUID

from temporalio import activity
from temporalio.exceptions import ApplicationError

from heysh.pipeline.chunking import TokenCounter, chunk_id, iter_chunks
from heysh.pipeline.embedding import Embedder, EmbeddingError
from heysh.pipeline.extraction import Extractor
from heysh.pipeline.extraction.base import ChunkExtraction, ChunkInput, ExtractionError
from heysh.pipeline.resolution import ResolvedEntity, ResolvedRelation, Resolver
from heysh.stores.chunks import ChunkStore, NewChunk
from heysh.stores.documents import DocumentStatus, DocumentStore
from heysh.stores.graph import GraphStore
from heysh.stores.journal import EntityRow, JournalStore, RelationRow
from heysh.stores.vectors import ChunkVector, VectorsRejectedError, VectorStore
from heysh.stores.withdrawal import DeleteImpact, document_impact, relation_params
from heysh.telemetry.worker_metrics import count_embedded, count_graph_writes

GRAPH_BATCH = 500
# Rows per UNWIND write: bench/ingest.py measured 7.9k entity rows/s at 500, 11.2k at 5,000.
GRAPH_WRITE_BATCH = 5000
CHUNK_BATCH = 500
# The ApplicationError type for "this run no longer owns the document" (deleted, domain going).
SUPERSEDED = "Superseded"
_T = TypeVar("_T")


@dataclass
class DocumentRef:
    document_id: str
    domain_id: str
    title: str = ""


@dataclass
class ChunkRange:
    document_id: str
    domain_id: str
    start: int
    end: int
    title: str = ""


@dataclass
class ChunkSummary:
    chunks: int
    tokens: int


@dataclass
class BatchOutcome:
    processed: int


@dataclass
class ResolveSummary:
    entities: int
    relationships: int


@dataclass
class DocumentStatusChange:
    document_id: str
    status: str
    error: str | None = None
    chunks: int | None = None
    entities: int | None = None
    relationships: int | None = None
    expected: list[str] | None = None  # only from one of these statuses


@dataclass
class PurgeOutcome:
    vectors_deleted: int
    entities_deleted: int


class DocumentActivities:
    def __init__(
        self,
        documents: DocumentStore,
        chunks: ChunkStore,
        journal: JournalStore,
        graph: GraphStore,
        vectors: VectorStore,
        embedder: Embedder,
        extractor: Extractor,
        counter: TokenCounter,
        *,
        max_tokens: int = 200,
        overlap_tokens: int = 40,
    ) -> None:
        self._documents = documents
        self._chunks = chunks
        self._journal = journal
        self._graph = graph
        self._vectors = vectors
        self._embedder = embedder
        self._extractor = extractor
        self._counter = counter
        self._max_tokens = max_tokens
        self._overlap_tokens = overlap_tokens

    # --- processing -----------------------------------------------------------------------------

    @activity.defn(name="begin_document")
    async def begin_document(self, ref: DocumentRef) -> BatchOutcome:
        """Mark PROCESSING and withdraw anything an earlier run wrote, so every run starts clean."""
        if not await self._documents.begin_processing(UUID(ref.document_id)):
            raise ApplicationError(
                "the document was deleted, or its domain is being deleted",
                type=SUPERSEDED,
                non_retryable=True,
            )
        await self._purge(ref, keep_document_node=True)
        return BatchOutcome(processed=1)

    @activity.defn(name="chunk_document")
    async def chunk_document(self, ref: DocumentRef) -> ChunkSummary:
        """Chunk the text a batch at a time, storing each batch before cutting the next."""
        document_id = UUID(ref.document_id)
        content = await self._documents.content(document_id)
        if content is None:
            raise ApplicationError("the document no longer exists", non_retryable=True)
        await self._chunks.forget_intermediates(document_id)
        pieces = iter_chunks(
            content,
            self._counter,
            max_tokens=self._max_tokens,
            overlap_tokens=self._overlap_tokens,
        )
        chunks = tokens = 0
        while batch := await asyncio.to_thread(lambda: list(islice(pieces, CHUNK_BATCH))):
            await self._chunks.append_chunks(
                document_id,
                [
                    NewChunk(
                        id=UUID(chunk_id(ref.document_id, c.index)),
                        index=c.index,
                        start=c.start,
                        end=c.end,
                        token_count=c.token_count,
                        text=c.text,
                    )
                    for c in batch
                ],
            )
            chunks += len(batch)
            tokens += sum(c.token_count for c in batch)
            activity.heartbeat(chunks)
        return ChunkSummary(chunks=chunks, tokens=tokens)

    @activity.defn(name="embed_chunks")
    async def embed_chunks(self, batch: ChunkRange) -> BatchOutcome:
        rows = await self._chunks.chunks(UUID(batch.document_id), batch.start, batch.end)
        try:
            vectors = await _with_heartbeat(self._embedder.embed([row.text for row in rows]))
        except EmbeddingError as exc:
            raise ApplicationError(str(exc), type="EmbeddingError") from exc
        await self._chunks.save_embeddings(
            UUID(batch.document_id),
            [(row.chunk_index, vector) for row, vector in zip(rows, vectors, strict=True)],
        )
        count_embedded(len(rows), sum(row.token_count for row in rows))
        return BatchOutcome(processed=len(rows))

    @activity.defn(name="index_chunks")
    async def index_chunks(self, batch: ChunkRange) -> BatchOutcome:
        rows = await self._chunks.chunks(
            UUID(batch.document_id), batch.start, batch.end, with_embedding=True
        )
        missing = [row.chunk_index for row in rows if row.embedding is None]
        if missing:
            raise ApplicationError(f"chunks {missing[:5]} have no embedding", non_retryable=True)
        try:
            await self._vectors.upsert_chunks(
                batch.domain_id,
                [
                    ChunkVector(
                        chunk_id=str(row.id),
                        document_id=batch.document_id,
                        index=row.chunk_index,
                        title=batch.title,
                        text=row.text,
                        start=row.start_offset,
                        end=row.end_offset,
                        vector=list(row.embedding or []),
                    )
                    for row in rows
                ],
            )
        except VectorsRejectedError as exc:
            raise ApplicationError(str(exc), type="VectorsRejected", non_retryable=True) from exc
        return BatchOutcome(processed=len(rows))

    @activity.defn(name="extract_chunks")
    async def extract_chunks(self, batch: ChunkRange) -> BatchOutcome:
        rows = await self._chunks.chunks(UUID(batch.document_id), batch.start, batch.end)
        try:
            results = await _with_heartbeat(
                self._extractor.extract([ChunkInput(str(row.id), row.text) for row in rows])
            )
        except ExtractionError as exc:
            raise ApplicationError(
                str(exc), type="ExtractionError", non_retryable=not exc.retryable
            ) from exc
        await self._journal.save_extractions(
            UUID(batch.document_id),
            [
                (row.chunk_index, result.to_json())
                for row, result in zip(rows, results, strict=True)
            ],
        )
        return BatchOutcome(processed=len(rows))

    @activity.defn(name="resolve_document")
    async def resolve_document(self, ref: DocumentRef) -> ResolveSummary:
        """Resolve the extractions read a page at a time; the resolver keeps only what it found."""
        document_id = UUID(ref.document_id)
        resolver = await read_extractions(self._journal, Resolver(ref.domain_id), document_id)
        entities, relations = await _with_heartbeat(asyncio.to_thread(resolver.finish))
        await save_resolution(self._journal, document_id, entities, relations)
        return ResolveSummary(entities=len(entities), relationships=len(relations))

    @activity.defn(name="write_graph")
    async def write_graph(self, ref: DocumentRef) -> ResolveSummary:
        """UNWIND batches of chunks, then entities, then relations; a heartbeat after each."""
        document_id = UUID(ref.document_id)
        await self._graph.merge_document(ref.domain_id, ref.document_id, ref.title)
        async for rows in self._chunks.chunk_pages(document_id, GRAPH_BATCH):
            await self._graph.merge_chunks(
                ref.domain_id,
                ref.document_id,
                [
                    {
                        "id": str(r.id),
                        "index": r.chunk_index,
                        "start": r.start_offset,
                        "end": r.end_offset,
                        "text": r.text,
                    }
                    for r in rows
                ],
            )
            activity.heartbeat("chunks")
        await write_contributions(self._journal, self._graph, UUID(ref.domain_id), document_id)
        entity_count, relation_count = await self._journal.resolution_counts(document_id)
        return ResolveSummary(entities=entity_count, relationships=relation_count)

    @activity.defn(name="set_document_status")
    async def set_document_status(self, change: DocumentStatusChange) -> BatchOutcome:
        counts = None
        if change.chunks is not None:
            counts = (change.chunks, change.entities or 0, change.relationships or 0)
        expected = [DocumentStatus(s) for s in change.expected] if change.expected else None
        changed = await self._documents.set_status(
            UUID(change.document_id),
            DocumentStatus(change.status),
            change.error,
            counts,
            expected=expected,
        )
        return BatchOutcome(processed=int(changed))

    # --- withdrawal -----------------------------------------------------------------------------

    @activity.defn(name="document_impact")
    async def document_impact(self, ref: DocumentRef) -> DeleteImpact:
        """What deleting the document would remove or change; reads only."""
        return await document_impact(
            self._journal,
            self._graph,
            self._vectors,
            ref.domain_id,
            ref.document_id,
        )

    @activity.defn(name="purge_document")
    async def purge_document(self, ref: DocumentRef) -> PurgeOutcome:
        """Withdraw everything derived from the document from Weaviate and Neo4j."""
        return await self._purge(ref, keep_document_node=False)

    @activity.defn(name="delete_document_metadata")
    async def delete_document_metadata(self, ref: DocumentRef) -> BatchOutcome:
        return BatchOutcome(processed=int(await self._documents.delete(UUID(ref.document_id))))

    async def _purge(self, ref: DocumentRef, *, keep_document_node: bool) -> PurgeOutcome:
        # The document's own resolution rows are the journal of what it contributed; they are
        # forgotten last, so a purge interrupted at any point can simply run again.
        document_id = UUID(ref.document_id)
        domain_id = UUID(ref.domain_id)
        # Each page's rows are deleted as its weights are written, so restart from the first.
        while relations := await self._journal.relation_page(document_id, None, GRAPH_BATCH):
            async with self._journal.relation_weights(
                domain_id, document_id, relations, withdrawing=True
            ) as weights:
                await self._graph.set_relation_weights([relation_params(w) for w in weights])
            activity.heartbeat("relations")
        await self._graph.delete_document_chunks(ref.document_id)
        entities_deleted = 0
        async for entities in self._journal.entity_pages(document_id, GRAPH_BATCH):
            entities_deleted += await self._graph.delete_orphan_entities(
                [str(e.entity_id) for e in entities]
            )
            activity.heartbeat("entities")
        if not keep_document_node:
            await self._graph.delete_document_node(ref.document_id)
        activity.heartbeat("vectors")
        vectors = await self._vectors.delete_document(ref.domain_id, ref.document_id)
        await self._chunks.forget_intermediates(document_id)
        return PurgeOutcome(vectors_deleted=vectors, entities_deleted=entities_deleted)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.begin_document,
            self.chunk_document,
            self.embed_chunks,
            self.index_chunks,
            self.extract_chunks,
            self.resolve_document,
            self.write_graph,
            self.set_document_status,
            self.document_impact,
            self.purge_document,
            self.delete_document_metadata,
        ]


async def read_extractions(
    journal: JournalStore, resolver: Resolver, document_id: UUID
) -> Resolver:
    """Feed the document's stored extractions to ``resolver``, a page at a time."""
    missing = 0
    async for page in journal.extraction_pages(document_id, GRAPH_BATCH):
        for _, data in page:
            if data is None:
                missing += 1
            else:
                resolver.add(ChunkExtraction.from_json(data))
        activity.heartbeat("reading extractions")
    if missing:
        raise ApplicationError(f"{missing} chunk(s) were never extracted")
    return resolver


async def save_resolution(
    journal: JournalStore,
    document_id: UUID,
    entities: Sequence[ResolvedEntity],
    relations: Sequence[ResolvedRelation],
) -> None:
    """Replace the document's journal with this resolution."""
    await journal.replace_resolution(
        document_id,
        [
            EntityRow(
                entity_id=UUID(e.id),
                name=e.name,
                type=e.type,
                description=e.description,
                chunk_ids=[UUID(c) for c in e.chunk_ids],
            )
            for e in entities
        ],
        [
            RelationRow(
                source_id=UUID(r.source_id),
                target_id=UUID(r.target_id),
                type=r.type,
                evidence=[UUID(c) for c in r.evidence],
            )
            for r in relations
        ],
    )


async def write_contributions(
    journal: JournalStore, graph: GraphStore, domain_id: UUID, document_id: UUID
) -> None:
    """Merge the document's journal (its entities, then its relations with domain-wide weights)
    into the graph, a page at a time with a heartbeat after each."""
    async for entities in journal.entity_pages(document_id, GRAPH_WRITE_BATCH):
        await graph.merge_entities(str(domain_id), [_entity_params(e) for e in entities])
        count_graph_writes(entities=len(entities))
        activity.heartbeat("entities")
    async for relations in journal.relation_pages(document_id, GRAPH_WRITE_BATCH):
        async with journal.relation_weights(
            domain_id, document_id, relations, withdrawing=False
        ) as weights:
            await graph.merge_relations([relation_params(w) for w in weights])
        count_graph_writes(relations=len(relations))
        activity.heartbeat("relations")


async def _with_heartbeat(work: Awaitable[_T], every: float = 2.0) -> _T:
    """Await ``work`` while heartbeating, so a dead worker is noticed and cancels arrive."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()


def _entity_params(e: EntityRow) -> dict[str, Any]:
    return {
        "id": str(e.entity_id),
        "name": e.name,
        "type": e.type,
        "description": e.description,
        "chunk_ids": [str(c) for c in e.chunk_ids],
    }
