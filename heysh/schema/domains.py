"""Domains: the knowledge areas users own."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.errors import NotFoundError
from heysh.resolvers import domains as resolve
from heysh.resolvers import graph as read
from heysh.resolvers import members
from heysh.resolvers.access import Refusal
from heysh.schema.common import (
    User,
    UserError,
    UserErrorCode,
    parse_global_id,
    parse_global_uuid,
    parse_uuid,
    user_error,
)
from heysh.schema.connections import (
    DEFAULT_PAGE_SIZE,
    Connection,
    document_key,
    page_args,
    selects,
)
from heysh.schema.entities import Entity, entity_key
from heysh.schema.runs import WorkflowRun
from heysh.stores.domain_events import DomainEventRow
from heysh.stores.graph_values import NameKey
from heysh.stores.postgres import DomainRow, PageKey
from heysh.stores.postgres import DomainStatus as StoreDomainStatus

if TYPE_CHECKING:
    from heysh.schema.documents import Document
    from heysh.schema.members import DomainMember

DomainStatus = strawberry.enum(StoreDomainStatus, name="DomainStatus")


@strawberry.type(description="How much a domain holds.")
class DomainStats:
    documents: int = strawberry.field(description="Documents in any status.")
    ready_documents: int = strawberry.field(description="Documents processed and searchable.")
    chunks: int
    entities: int
    relationships: int


@strawberry.type(description="A knowledge area; only its members can see that it exists.")
class Domain(relay.Node):
    id: relay.NodeID[str]
    name: str
    description: str
    status: DomainStatus  # type: ignore[valid-type]
    error: str | None = strawberry.field(description="Why the domain is FAILED, when it is.")
    created_at: datetime
    owner_id: strawberry.Private[UUID]

    @classmethod
    def from_row(cls, row: DomainRow) -> Domain:
        return cls(
            id=str(row.id),
            name=row.name,
            description=row.description,
            status=row.status,
            error=row.error,
            created_at=row.created_at,
            owner_id=row.created_by,
        )

    @strawberry.field
    def owner(self) -> User:
        return User(id=strawberry.ID(str(self.owner_id)))

    @strawberry.field(description="The most recent workflow run on this domain.")
    async def last_run(self, info: Info) -> WorkflowRun | None:
        run = await info.context.loaders.latest_run.load(UUID(self.id))
        return WorkflowRun.from_row(run) if run else None

    @strawberry.field(description="The domain's documents, newest first.")
    async def documents(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Annotated[Document, strawberry.lazy("heysh.schema.documents")]]:
        from heysh.schema.documents import Document

        request = page_args(info, "documents", first, after, PageKey)
        # selected_fields holds this field itself: the path starts below it.
        with_runs = any(
            selects(field.selections, ("edges", "node", "lastRun"))
            for field in info.selected_fields
        )
        page = await resolve.document_page(
            info.context, UUID(self.id), request, with_runs=with_runs
        )
        return Connection.of("documents", page, Document.from_row, document_key)

    @strawberry.field(description="The domain's entities by name; type and nameContains filter.")
    async def entities(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        type: str | None = None,
        name_contains: Annotated[
            str | None, strawberry.argument(description="Part of the name, in any case.")
        ] = None,
    ) -> Connection[Entity]:
        request = page_args(info, "domainEntities", first, after, NameKey)
        page = await read.domain_entities(info.context, self.id, request, type, name_contains)
        return Connection.of("domainEntities", page, Entity.from_node, entity_key)

    @strawberry.field(description="Counts of what the domain holds.")
    async def stats(self, info: Info) -> DomainStats:
        stats = await info.context.loaders.domain_stats.load(UUID(self.id))
        return DomainStats(
            documents=stats.documents.documents,
            ready_documents=stats.documents.ready,
            chunks=stats.graph.chunks,
            entities=stats.graph.entities,
            relationships=stats.graph.relationships,
        )

    @strawberry.field(
        description="Who belongs to the domain, newest first; null unless the caller owns it."
    )
    async def members(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Annotated[DomainMember, strawberry.lazy("heysh.schema.members")]] | None:
        from heysh.schema.members import DomainMember

        request = page_args(info, "members", first, after, PageKey)
        page = await members.member_page(info.context, UUID(self.id), request)
        if page is None:
            return None
        return Connection.of(
            "members", page, DomainMember.from_row, lambda m: PageKey(m.created_at, m.user_id)
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Domain | None]:
        ids = [parse_uuid(i) for i in node_ids]
        rows = await info.context.loaders.domain.load_many([i for i in ids if i is not None])
        by_id = {row.id: row for row in rows if row is not None}
        return [cls.from_row(by_id[i]) if i in by_id else None for i in ids]


@strawberry.input
class CreateDomainInput:
    name: str
    description: str = ""


@strawberry.type
class CreateDomainSuccess:
    domain: Domain
    run: WorkflowRun


CreateDomainPayload = Annotated[
    CreateDomainSuccess | UserError, strawberry.union("CreateDomainPayload")
]


@strawberry.type
class DomainQueries:
    @strawberry.field(description="A domain the caller is a member of; null otherwise.")
    async def domain(self, info: Info, id: strawberry.ID) -> Domain | None:
        node_id = parse_global_id(id, "Domain")
        if node_id is None:
            return None
        (domain,) = await Domain.resolve_nodes(info=info, node_ids=[node_id])
        return domain

    @strawberry.field(description="The caller's domains, newest first.")
    async def domains(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Domain]:
        request = page_args(info, "domains", first, after, PageKey)
        page = await resolve.domain_page(info.context, request)
        return Connection.of("domains", page, Domain.from_row, document_key)


@strawberry.type
class DomainMutations:
    @strawberry.mutation(
        description="Create a domain owned by the caller; returns its run at once."
    )
    async def create_domain(self, info: Info, input: CreateDomainInput) -> CreateDomainPayload:
        problem = resolve.validate_new_domain(info.context, input.name, input.description)
        if problem is not None:
            return UserError(
                code=UserErrorCode.INVALID_INPUT, message=problem.message, field=problem.field
            )
        row, run = await resolve.create_domain(info.context, input.name, input.description)
        return CreateDomainSuccess(domain=Domain.from_row(row), run=WorkflowRun.queued(run))


@strawberry.type
class DeleteDomainSuccess:
    domain_id: strawberry.ID
    run: WorkflowRun


@strawberry.type
class RebuildGraphSuccess:
    domain_id: strawberry.ID
    run: WorkflowRun


DeleteDomainPayload = Annotated[
    DeleteDomainSuccess | UserError, strawberry.union("DeleteDomainPayload")
]
RebuildGraphPayload = Annotated[
    RebuildGraphSuccess | UserError, strawberry.union("RebuildGraphPayload")
]


@strawberry.type
class DomainOwnerMutations:
    @strawberry.mutation(description="Delete a domain and everything in it (owners only).")
    async def delete_domain(self, info: Info, id: strawberry.ID) -> DeleteDomainPayload:
        run = await _owner_run(info, id, resolve.DELETION)
        if isinstance(run, Refusal):
            return user_error(run)
        return DeleteDomainSuccess(domain_id=id, run=run)

    @strawberry.mutation(
        description="Re-resolve the domain's entities across all its documents and rewrite its "
        "graph (owners only); the domain is REBUILDING until the run ends."
    )
    async def rebuild_graph(self, info: Info, domain_id: strawberry.ID) -> RebuildGraphPayload:
        run = await _owner_run(info, domain_id, resolve.REBUILD)
        if isinstance(run, Refusal):
            return user_error(run)
        return RebuildGraphSuccess(domain_id=domain_id, run=run)


async def _owner_run(
    info: Info,
    domain_id: strawberry.ID,
    operation: resolve.OwnerOperation,
) -> WorkflowRun | Refusal:
    parsed = parse_global_uuid(domain_id, "Domain")
    if parsed is None:
        return Refusal("NOT_FOUND", "domain not found", operation.argument)
    result = await resolve.start_owner_run(info.context, parsed, operation)
    return result if isinstance(result, Refusal) else WorkflowRun.queued(result)


@strawberry.enum(description="What happened in a domain.")
class DomainEventKind(Enum):
    DOCUMENT_ADDED = "DOCUMENT_ADDED"
    DOCUMENT_STATUS_CHANGED = "DOCUMENT_STATUS_CHANGED"
    DOCUMENT_DELETED = "DOCUMENT_DELETED"
    RUN_STARTED = "RUN_STARTED"
    RUN_ENDED = "RUN_ENDED"


@strawberry.type(description="One change in a domain, recorded with the change itself.")
class DomainEvent:
    seq: int = strawberry.field(description="1, 2, 3 ... per domain, without gaps.")
    kind: DomainEventKind
    document_id: strawberry.ID | None = strawberry.field(
        description="The document concerned (a document's run's too)."
    )
    run_id: strawberry.ID | None = strawberry.field(description="For RUN_STARTED and RUN_ENDED.")
    run_kind: str | None
    status: str | None = strawberry.field(
        description="The document's status, or the run's (RUNNING, then how it ended)."
    )
    at: datetime

    @classmethod
    def from_row(cls, row: DomainEventRow) -> DomainEvent:
        return cls(
            seq=row.seq,
            kind=DomainEventKind(row.kind),
            document_id=strawberry.ID(str(relay.GlobalID("Document", str(row.document_id))))
            if row.document_id
            else None,
            run_id=strawberry.ID(str(relay.GlobalID("WorkflowRun", row.run_id)))
            if row.run_id
            else None,
            run_kind=row.run_kind,
            status=row.status,
            at=row.at,
        )


@strawberry.type
class DomainSubscriptions:
    @strawberry.subscription(
        description="The domain's events in order, from the one after `after` (0: from the "
        "start), then each as it happens. Ends with FORBIDDEN when the caller loses access "
        "(removed, or the domain deleted)."
    )
    async def domain_events(
        self, info: Info, domain_id: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[DomainEvent, None]:
        ctx = info.context
        parsed = parse_global_id(domain_id, "Domain")
        domain = parse_uuid(parsed) if parsed else None
        if domain is None or await ctx.loaders.role.load(domain) is None:
            raise NotFoundError("domain not found")
        async for row in ctx.live.domain_events(domain, ctx.user_id, max(after, 0)):
            yield DomainEvent.from_row(row)
