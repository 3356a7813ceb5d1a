"""Adding, deleting and reprocessing documents."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from heysh.context import Context
from heysh.policy import Permission
from heysh.resolvers.access import Refusal, require
from heysh.resolvers.runs import run_suffix
from heysh.resolvers.text import refused_character, without_nul
from heysh.stores.documents import DocumentRow, DocumentStatus
from heysh.stores.postgres import DomainStatus, NewRun, RunRow
from heysh.stores.withdrawal import DeleteImpact, document_impact
from heysh.workflows.delete_document import DeleteDocumentInput, DeleteDocumentWorkflow
from heysh.workflows.process_document import (
    ProcessDocumentInput,
    ProcessDocumentWorkflow,
    workflow_id,
)

_DOCUMENT_NAMESPACE = uuid.UUID("8f1d5b0e-2b7c-4f5e-8c1a-6d3e9f0a7b21")


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


NOT_FOUND_DOMAIN = Refusal("NOT_FOUND", "domain not found", "domainId")
NOT_FOUND_DOCUMENT = Refusal("NOT_FOUND", "document not found", "id")
DOMAIN_NOT_ACTIVE = Refusal("INVALID_INPUT", "the domain is not active", "domainId")
REBUILDING = Refusal("BUSY", "the domain's graph is being rebuilt; try again when it is ACTIVE")

# A document can start new work only when no run holds it.
SETTLED = (DocumentStatus.READY, DocumentStatus.FAILED)


@dataclass(frozen=True)
class Added:
    document: DocumentRow
    run: RunRow | None
    created: bool
    removed_nul_characters: int = 0


async def read_content(
    ctx: Context, content: str | None, upload: Readable | None
) -> bytes | Refusal:
    limit = ctx.services.settings.max_document_bytes
    if (content is None) == (upload is None):
        return Refusal("INVALID_INPUT", "give exactly one of content or file", "content")
    if content is not None:
        data = content.encode("utf-8", errors="surrogatepass")
    else:
        assert upload is not None
        data = await upload.read(limit + 1)  # never buffer more than the limit allows
    if len(data) > limit:
        return Refusal(
            "CONTENT_TOO_LARGE", f"the document exceeds the limit of {limit} bytes", "content"
        )
    return data


def decode(data: bytes) -> str | Refusal:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refusal(
            "CONTENT_NOT_UTF8", f"the document is not valid UTF-8 (byte {exc.start})", "content"
        )
    if not text.strip():
        return Refusal("CONTENT_EMPTY", "the document has no text", "content")
    return text


async def add_document(
    ctx: Context, domain_id: UUID, title: str, content: str | None, upload: Readable | None
) -> Added | Refusal:
    settings = ctx.services.settings
    refusal = await require(ctx, domain_id, Permission.EDIT, NOT_FOUND_DOMAIN)
    if refusal:
        return refusal
    domain = await ctx.loaders.domain.load(domain_id)
    if domain is not None and domain.status is DomainStatus.REBUILDING:
        return REBUILDING
    if domain is None or domain.status is not DomainStatus.ACTIVE:
        return DOMAIN_NOT_ACTIVE
    refused = refused_character(title)  # before strip(), which would drop some at the ends
    if refused:
        return Refusal("INVALID_INPUT", f"title {refused}", "title")
    title = title.strip()
    if not title or len(title) > settings.max_title_length:
        return Refusal(
            "INVALID_INPUT", f"title must be 1 to {settings.max_title_length} characters", "title"
        )
    data = await read_content(ctx, content, upload)
    if isinstance(data, Refusal):
        return data
    data, removed = without_nul(data)  # Postgres text cannot hold NUL: store and hash without
    text = decode(data)
    if isinstance(text, Refusal):
        return text
    if content is not None and not removed:
        text = content  # the same characters: keep the request's string, not a second copy
    content_hash, size_bytes = hashlib.sha256(data).hexdigest(), len(data)
    del data  # only the text goes on to Postgres; a large upload holds one copy less meanwhile
    document_id = uuid.uuid5(_DOCUMENT_NAMESPACE, f"{domain_id}:{content_hash}")
    # The document id is derived from the content, so the unique row decides "same content";
    # each run gets an id of its own, so a delete and re-add starts afresh.
    run_id = workflow_id(str(domain_id), content_hash, run_suffix())
    added = await ctx.services.documents.add_document(
        document_id,
        domain_id,
        title,
        text,
        content_hash,
        ctx.user_id,
        run_id,
        size_bytes=size_bytes,
    )
    if added is None:
        return DOMAIN_NOT_ACTIVE  # a deleteDomain won the race since the check above
    document, run = added
    if run is None:
        if document.status is DocumentStatus.DELETING:
            return Refusal("BUSY", "this content is being deleted; add it again after", "content")
        latest = await ctx.loaders.latest_run.load(document.id)
        return Added(document, latest, created=False, removed_nul_characters=removed)
    await _start_processing(ctx, document, run_id)
    return Added(document, run, created=True, removed_nul_characters=removed)


async def reprocess_document(ctx: Context, document_id: UUID) -> Added | Refusal:
    document = await _editable_document(ctx, document_id)
    if isinstance(document, Refusal):
        return document
    run_id = workflow_id(str(document.domain_id), document.content_hash, run_suffix())
    moved = await _claim(ctx, document.id, DocumentStatus.PENDING, run_id, "PROCESS_DOCUMENT")
    if isinstance(moved, Refusal):
        return moved
    document, run = moved
    await _start_processing(ctx, document, run_id)
    return Added(document, run, created=False)


@dataclass(frozen=True)
class Deletion:
    document: DocumentRow
    impact: DeleteImpact | None
    run: RunRow | None


async def delete_document(ctx: Context, document_id: UUID, dry_run: bool) -> Deletion | Refusal:
    document = await _editable_document(ctx, document_id)
    if isinstance(document, Refusal):
        return document
    services = ctx.services
    if dry_run:
        if document.status not in SETTLED:
            return await _why_not_settled(ctx, document.id)
        impact = await document_impact(
            services.journal,
            services.graph,
            services.vectors,
            str(document.domain_id),
            str(document.id),
        )
        return Deletion(document, impact, None)
    run_id = f"delete-document-{document.id}-{run_suffix()}"
    moved = await _claim(ctx, document.id, DocumentStatus.DELETING, run_id, "DELETE_DOCUMENT")
    if isinstance(moved, Refusal):
        return moved
    document, run = moved
    await services.engine.start(
        DeleteDocumentWorkflow.run,
        DeleteDocumentInput(str(document.id), str(document.domain_id)),
        run_id=run_id,
        undo=lambda: services.documents.set_status(
            document.id,
            DocumentStatus.FAILED,
            "could not start the delete workflow; delete it again",
            expected=[DocumentStatus.DELETING],
        ),
    )
    return Deletion(document, None, run)


async def _start_processing(ctx: Context, document: DocumentRow, run_id: str) -> None:
    settings = ctx.services.settings
    await ctx.services.engine.start(
        ProcessDocumentWorkflow.run,
        ProcessDocumentInput(
            document_id=str(document.id),
            domain_id=str(document.domain_id),
            title=document.title,
            embed_batch=settings.embed_batch_size,
            index_batch=settings.index_batch_size,
            extract_batch=settings.extract_batch_size,
            extract_concurrency=settings.extract_concurrency,
        ),
        run_id=run_id,
        undo=lambda: ctx.services.documents.set_status(
            document.id,
            DocumentStatus.FAILED,
            "could not start the processing workflow",
            expected=[DocumentStatus.PENDING],
        ),
    )


async def _editable_document(ctx: Context, document_id: UUID) -> DocumentRow | Refusal:
    document = await ctx.loaders.document.load(document_id)
    if document is None:
        return NOT_FOUND_DOCUMENT
    refusal = await require(ctx, document.domain_id, Permission.EDIT, NOT_FOUND_DOCUMENT)
    return refusal or document


async def _claim(
    ctx: Context, document_id: UUID, status: DocumentStatus, run_id: str, kind: str
) -> tuple[DocumentRow, RunRow] | Refusal:
    """Move a settled document to ``status`` under a new run, or say why it cannot move."""
    moved = await ctx.services.documents.transition(
        document_id, SETTLED, status, NewRun(run_id, kind, ctx.user_id)
    )
    return moved if moved is not None else await _why_not_settled(ctx, document_id)


async def _why_not_settled(ctx: Context, document_id: UUID) -> Refusal:
    """Explain a lost transition from what the document is now."""
    current = await ctx.services.documents.get(document_id)
    if current is None:
        return NOT_FOUND_DOCUMENT
    if current.status is DocumentStatus.DELETING:
        return Refusal("BUSY", "the document is being deleted", "id")
    if current.status in SETTLED:
        return Refusal("BUSY", "the domain is not active", "id")
    return Refusal("BUSY", "the document is being processed; cancel its run first", "id")
