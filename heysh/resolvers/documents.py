"""Adding, deleting, reprocessing documents; canceling runs; deleting domains."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from heysh.context import Context
from heysh.errors import StoreError
from heysh.policy import Permission, allows
from heysh.stores.documents import DocumentRow, DocumentStatus
from heysh.stores.postgres import DomainStatus, RunRow
from heysh.stores.withdrawal import DeleteImpact, document_impact
from heysh.workflows.delete_document import DeleteDocumentInput, DeleteDocumentWorkflow
from heysh.workflows.delete_domain import DeleteDomainInput, DeleteDomainWorkflow
from heysh.workflows.process_document import (
    ProcessDocumentInput,
    ProcessDocumentWorkflow,
    workflow_id,
)

log = logging.getLogger(__name__)

_DOCUMENT_NAMESPACE = uuid.UUID("8f1d5b0e-2b7c-4f5e-8c1a-6d3e9f0a7b21")


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Refusal:
    """An expected failure for the caller: becomes a typed UserError."""

    code: str  # a UserErrorCode name
    message: str
    field: str | None = None


NOT_FOUND_DOMAIN = Refusal("NOT_FOUND", "domain not found", "domainId")
NOT_FOUND_DOCUMENT = Refusal("NOT_FOUND", "document not found", "id")


@dataclass(frozen=True)
class Added:
    document: DocumentRow
    run: RunRow | None
    created: bool


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
    refusal = await _require(ctx, domain_id, Permission.EDIT, NOT_FOUND_DOMAIN)
    if refusal:
        return refusal
    domain = await ctx.loaders.domain.load(domain_id)
    if domain is None or domain.status is not DomainStatus.ACTIVE:
        return Refusal("INVALID_INPUT", "the domain is not active", "domainId")
    title = title.strip()
    if not title or len(title) > settings.max_title_length:
        return Refusal(
            "INVALID_INPUT", f"title must be 1 to {settings.max_title_length} characters", "title"
        )
    data = await read_content(ctx, content, upload)
    if isinstance(data, Refusal):
        return data
    text = decode(data)
    if isinstance(text, Refusal):
        return text
    content_hash = hashlib.sha256(data).hexdigest()
    document_id = uuid.uuid5(_DOCUMENT_NAMESPACE, f"{domain_id}:{content_hash}")
    run_id = workflow_id(str(domain_id), content_hash)
    document, run = await ctx.services.documents.add_document(
        document_id, domain_id, title, text, content_hash, ctx.user_id, run_id
    )
    if run is None:
        return Added(document, await ctx.loaders.latest_run.load(document.id), created=False)
    await _start_processing(ctx, document, run_id)
    return Added(document, run, created=True)


async def reprocess_document(ctx: Context, document_id: UUID) -> Added | Refusal:
    document = await _editable_document(ctx, document_id)
    if isinstance(document, Refusal):
        return document
    if document.status in (DocumentStatus.PENDING, DocumentStatus.PROCESSING):
        return Refusal("BUSY", "the document is being processed; cancel its run first", "id")
    run_id = f"{workflow_id(str(document.domain_id), document.content_hash)}-r{_suffix()}"
    run = await ctx.services.documents.record_run(
        run_id, document.domain_id, "PROCESS_DOCUMENT", document.id, ctx.user_id
    )
    await ctx.services.documents.set_status(document.id, DocumentStatus.PENDING)
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
    if document.status in (DocumentStatus.PENDING, DocumentStatus.PROCESSING):
        return Refusal("BUSY", "the document is being processed; cancel its run first", "id")
    services = ctx.services
    if dry_run:
        impact = await document_impact(
            services.documents,
            services.graph,
            services.vectors,
            str(document.domain_id),
            str(document.id),
        )
        return Deletion(document, impact, None)
    run_id = f"delete-document-{document.id}-{_suffix()}"
    run = await services.documents.record_run(
        run_id, document.domain_id, "DELETE_DOCUMENT", document.id, ctx.user_id
    )
    await services.documents.set_status(document.id, DocumentStatus.DELETING)
    await _start(
        services.temporal.start_workflow(
            DeleteDocumentWorkflow.run,
            DeleteDocumentInput(str(document.id), str(document.domain_id)),
            id=run_id,
            task_queue=services.settings.task_queue,
        ),
    )
    return Deletion(document, None, run)


async def cancel_run(ctx: Context, run_id: str) -> RunRow | Refusal:
    run = await ctx.loaders.run.load(run_id)
    if run is None:
        return Refusal("NOT_FOUND", "run not found", "id")
    refusal = await _require(
        ctx, run.domain_id, Permission.EDIT, Refusal("NOT_FOUND", "run not found", "id")
    )
    if refusal:
        return refusal
    try:
        await ctx.services.temporal.get_workflow_handle(run.id).cancel()
    except RPCError as exc:
        return Refusal("INVALID_INPUT", f"the run cannot be canceled: {exc.message}", "id")
    return run


async def delete_domain(ctx: Context, domain_id: UUID) -> RunRow | Refusal:
    refusal = await _require(
        ctx, domain_id, Permission.ADMINISTER, Refusal("NOT_FOUND", "domain not found", "id")
    )
    if refusal:
        return refusal
    services = ctx.services
    for other in await services.postgres.run_ids(domain_id):
        # Stop work that would write into the domain while it is being deleted.
        with contextlib.suppress(RPCError):  # already closed
            await services.temporal.get_workflow_handle(other).cancel()
    await services.postgres.set_domain_status(domain_id, DomainStatus.DELETING)
    run = await services.documents.record_run(
        f"delete-domain-{domain_id}-{_suffix()}", domain_id, "DELETE_DOMAIN", domain_id, ctx.user_id
    )
    await _start(
        services.temporal.start_workflow(
            DeleteDomainWorkflow.run,
            DeleteDomainInput(str(domain_id)),
            id=run.id,
            task_queue=services.settings.task_queue,
        ),
    )
    return run


async def _start_processing(ctx: Context, document: DocumentRow, run_id: str) -> None:
    settings = ctx.services.settings
    try:
        await _start(
            ctx.services.temporal.start_workflow(
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
                id=run_id,
                task_queue=settings.task_queue,
            ),
        )
    except StoreError:
        await ctx.services.documents.set_status(
            document.id, DocumentStatus.FAILED, "could not start the processing workflow"
        )
        raise


async def _start(starting: Awaitable[object]) -> None:
    try:
        await starting
    except WorkflowAlreadyStartedError:
        return  # a concurrent identical request started it: one run, as intended
    except RPCError as exc:
        log.exception("could not start a workflow")
        raise StoreError("the workflow service is unavailable") from exc


async def _require(
    ctx: Context, domain_id: UUID, permission: Permission, hidden: Refusal
) -> Refusal | None:
    role = await ctx.loaders.role.load(domain_id)
    if role is None:
        return hidden  # non-members learn nothing, not even that the domain exists
    if not allows(role, permission):
        return Refusal("FORBIDDEN", f"your role ({role.value}) does not allow this")
    return None


async def _editable_document(ctx: Context, document_id: UUID) -> DocumentRow | Refusal:
    document = await ctx.loaders.document.load(document_id)
    if document is None:
        return NOT_FOUND_DOCUMENT
    refusal = await _require(ctx, document.domain_id, Permission.EDIT, NOT_FOUND_DOCUMENT)
    return refusal or document


def _suffix() -> str:
    return uuid.uuid4().hex[:8]
