"""Documents and the mutations that add, reprocess or delete them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from heysh.context import Info
from heysh.resolvers import documents as resolve
from heysh.resolvers import graph as read
from heysh.resolvers.access import Refusal
from heysh.schema.chunks import Chunk, chunk_key
from heysh.schema.common import (
    UserError,
    parse_global_id,
    parse_global_uuid,
    parse_uuid,
    user_error,
)
from heysh.schema.connections import DEFAULT_PAGE_SIZE, Connection, page_args
from heysh.schema.entities import Entity, entity_key
from heysh.schema.runs import WorkflowRun, load_run
from heysh.stores import withdrawal
from heysh.stores.documents import DocumentRow
from heysh.stores.documents import DocumentStatus as StoreDocumentStatus
from heysh.stores.graph_values import ChunkKey, NameKey
from heysh.stores.postgres import RunRow

if TYPE_CHECKING:
    from heysh.schema.domains import Domain

DocumentStatus = strawberry.enum(StoreDocumentStatus, name="DocumentStatus")


@strawberry.type(description="A document in a domain and the state of its processing.")
class Document(relay.Node):
    id: relay.NodeID[str]
    title: str
    status: DocumentStatus  # type: ignore[valid-type]
    content_hash: str = strawberry.field(description="SHA-256 of the stored UTF-8 content, hex.")
    size_bytes: int
    created_at: datetime
    processed_at: datetime | None
    error: str | None = strawberry.field(description="Why the document is FAILED, when it is.")
    chunk_count: int | None
    entity_count: int | None
    relationship_count: int | None
    domain_id: strawberry.Private[UUID]

    @classmethod
    def from_row(cls, row: DocumentRow) -> Document:
        return cls(
            id=str(row.id),
            title=row.title,
            status=row.status,
            content_hash=row.content_hash,
            size_bytes=row.size_bytes,
            created_at=row.created_at,
            processed_at=row.processed_at,
            error=row.error,
            chunk_count=row.chunk_count,
            entity_count=row.entity_count,
            relationship_count=row.relationship_count,
            domain_id=row.domain_id,
        )

    @strawberry.field(description="The domain this document belongs to.")
    async def domain(
        self, info: Info
    ) -> Annotated[Domain, strawberry.lazy("heysh.schema.domains")] | None:
        from heysh.schema.domains import Domain

        (domain,) = await Domain.resolve_nodes(info=info, node_ids=[str(self.domain_id)])
        return domain

    @strawberry.field(description="The most recent run on this document.")
    def last_run(self, info: Info) -> WorkflowRun | None:
        # Read with the page when the page asked for it (Domain.documents): then no await at
        # all, which for a page of documents is most of what lastRun costs. Else a DataLoader.
        prefetched = info.context.loaders.prefetched_runs
        if self.id in prefetched:
            run = prefetched[self.id]
            return WorkflowRun.from_row(run) if run else None
        return _load_last_run(info, UUID(self.id))  # type: ignore[return-value]

    @strawberry.field(description="The chunks the document was split into, in order.")
    async def chunks(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Chunk]:
        request = page_args(info, "chunks", first, after, ChunkKey)
        page = await read.children(
            info.context.loaders.document_chunks, self.id, str(self.domain_id), request
        )
        return Connection.of("chunks", page, Chunk.from_node, chunk_key)

    @strawberry.field(description="Entities its chunks mention, by name.")
    async def entities(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Entity]:
        request = page_args(info, "documentEntities", first, after, NameKey)
        page = await read.children(
            info.context.loaders.document_entities, self.id, str(self.domain_id), request
        )
        return Connection.of("documentEntities", page, Entity.from_node, entity_key)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Document | None]:
        ids = [parse_uuid(i) for i in node_ids]
        rows = await info.context.loaders.document.load_many([i for i in ids if i is not None])
        by_id = {row.id: row for row in rows if row is not None}
        return [cls.from_row(by_id[i]) if i in by_id else None for i in ids]


@strawberry.type(description="What deleting a document removes or changes.")
class DeleteImpact(withdrawal.DeleteImpact):
    entity_names: list[str] = strawberry.field(
        description="Names of entities that would be deleted (first 100)."
    )


@strawberry.input
class AddDocumentInput:
    domain_id: strawberry.ID
    title: str
    content: str | None = None
    file: Upload | None = None


@strawberry.type
class AddDocumentSuccess:
    document: Document
    run: WorkflowRun | None
    created: bool = strawberry.field(
        description="False when identical content was already in the domain."
    )
    removed_nul_characters: int = strawberry.field(
        default=0,
        description=(
            "NUL characters (U+0000) removed from the content before it was stored, as text"
            " extracted from PDFs often carries them; contentHash is of the stored text."
        ),
    )


@strawberry.type
class ReprocessDocumentSuccess:
    document: Document
    run: WorkflowRun


@strawberry.type
class DeleteDocumentSuccess:
    document: Document
    dry_run: bool
    impact: DeleteImpact | None = strawberry.field(description="Set for a dry run.")
    run: WorkflowRun | None = strawberry.field(description="Set for a real delete.")


AddDocumentPayload = Annotated[
    AddDocumentSuccess | UserError, strawberry.union("AddDocumentPayload")
]
ReprocessDocumentPayload = Annotated[
    ReprocessDocumentSuccess | UserError, strawberry.union("ReprocessDocumentPayload")
]
DeleteDocumentPayload = Annotated[
    DeleteDocumentSuccess | UserError, strawberry.union("DeleteDocumentPayload")
]


@strawberry.type
class DocumentQueries:
    @strawberry.field(description="A document in a domain the caller is a member of.")
    async def document(self, info: Info, id: strawberry.ID) -> Document | None:
        node_id = parse_global_id(id, "Document")
        if node_id is None:
            return None
        (document,) = await Document.resolve_nodes(info=info, node_ids=[node_id])
        return document


NOT_A_FILE = Refusal(
    "INVALID_INPUT", "file must be a file part of a GraphQL multipart request", "file"
)


@strawberry.type
class DocumentMutations:
    @strawberry.mutation(description="Add text (content) or a file; processing starts at once.")
    async def add_document(self, info: Info, input: AddDocumentInput) -> AddDocumentPayload:
        domain_id = parse_global_uuid(input.domain_id, "Domain")
        if domain_id is None:
            return user_error(resolve.NOT_FOUND_DOMAIN)
        if input.file is not None and not callable(getattr(input.file, "read", None)):
            # JSON variables can put any value where an Upload belongs; only a multipart part reads.
            return user_error(NOT_A_FILE)
        result = await resolve.add_document(
            info.context,
            domain_id,
            input.title,
            input.content,
            input.file,  # type: ignore[arg-type]
        )
        if isinstance(result, Refusal):
            return user_error(result)
        return AddDocumentSuccess(
            document=Document.from_row(result.document),
            run=await _run(info, result.run),
            created=result.created,
            removed_nul_characters=result.removed_nul_characters,
        )

    @strawberry.mutation(description="Run the pipeline again; the result equals a first run.")
    async def reprocess_document(self, info: Info, id: strawberry.ID) -> ReprocessDocumentPayload:
        document_id = parse_global_uuid(id, "Document")
        if document_id is None:
            return user_error(resolve.NOT_FOUND_DOCUMENT)
        result = await resolve.reprocess_document(info.context, document_id)
        if isinstance(result, Refusal):
            return user_error(result)
        assert result.run is not None
        return ReprocessDocumentSuccess(
            document=Document.from_row(result.document),
            run=WorkflowRun.queued(result.run),
        )

    @strawberry.mutation(description="Delete a document and all derived data; dryRun reports only.")
    async def delete_document(
        self, info: Info, id: strawberry.ID, dry_run: bool = False
    ) -> DeleteDocumentPayload:
        document_id = parse_global_uuid(id, "Document")
        if document_id is None:
            return user_error(resolve.NOT_FOUND_DOCUMENT)
        result = await resolve.delete_document(info.context, document_id, dry_run)
        if isinstance(result, Refusal):
            return user_error(result)
        impact = result.impact
        return DeleteDocumentSuccess(
            document=Document.from_row(result.document),
            dry_run=dry_run,
            impact=DeleteImpact(**dataclasses.asdict(impact)) if impact else None,
            run=WorkflowRun.queued(result.run) if result.run else None,
        )


async def _run(info: Info, run: RunRow | None) -> WorkflowRun | None:
    if run is None:
        return None
    return await load_run(info, run.id) or WorkflowRun.queued(run)


async def _load_last_run(info: Info, document_id: UUID) -> WorkflowRun | None:
    run = await info.context.loaders.latest_run.load(document_id)
    return WorkflowRun.from_row(run) if run else None
