"""Fetching domains; creating, deleting and rebuilding them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from temporalio.types import MethodAsyncSingleParam

from heysh.context import Context
from heysh.errors import StoreError
from heysh.policy import Permission
from heysh.resolvers.access import Refusal, require
from heysh.resolvers.pagination import Page, PageRequest, page_of
from heysh.resolvers.runs import run_suffix
from heysh.resolvers.text import LINE_BREAKS, refused_character
from heysh.stores.documents import DocumentRow
from heysh.stores.postgres import (
    DomainRow,
    DomainStatus,
    NewRun,
    PageKey,
    PostgresStore,
    RunRow,
)
from heysh.workflows.create_domain import CreateDomainInput, CreateDomainWorkflow, workflow_id
from heysh.workflows.delete_domain import DeleteDomainInput, DeleteDomainWorkflow
from heysh.workflows.rebuild_graph import RebuildGraphInput, RebuildGraphWorkflow


@dataclass(frozen=True)
class InputProblem:
    field: str
    message: str


async def domain_page(ctx: Context, request: PageRequest[PageKey]) -> Page[DomainRow]:
    """The caller's domains, newest first."""
    rows = await ctx.services.postgres.domain_page(ctx.user_id, request.fetch, request.after)
    page = page_of(request, rows)
    for row in page.rows:
        ctx.loaders.domain.prime(row.id, row)
    return page


async def document_page(
    ctx: Context, domain_id: UUID, request: PageRequest[PageKey], *, with_runs: bool = False
) -> Page[DocumentRow]:
    """A visible domain's documents, newest first (batched across domains by a DataLoader);
    ``with_runs`` reads each one's latest run in the same statement, for lastRun."""
    key = (domain_id, request.fetch, request.after, with_runs)
    return page_of(request, await ctx.loaders.domain_documents.load(key))


def validate_new_domain(ctx: Context, name: str, description: str) -> InputProblem | None:
    settings = ctx.services.settings
    refused = refused_character(name)
    if refused:
        return InputProblem("name", f"name {refused}")
    refused = refused_character(description, allow=LINE_BREAKS)
    if refused:
        return InputProblem("description", f"description {refused}")
    if not name.strip():
        return InputProblem("name", "name must not be empty")
    if len(name.strip()) > settings.max_domain_name_length:
        return InputProblem(
            "name", f"name must be at most {settings.max_domain_name_length} characters"
        )
    if len(description) > settings.max_domain_description_length:
        return InputProblem(
            "description",
            f"description must be at most {settings.max_domain_description_length} characters",
        )
    return None


async def create_domain(ctx: Context, name: str, description: str) -> tuple[DomainRow, RunRow]:
    """Record the domain as CREATING with the caller as owner, then start its workflow."""
    domain_id = uuid4()
    run_id = workflow_id(str(domain_id))
    domain, run = await ctx.services.postgres.create_domain(
        domain_id, name.strip(), description, ctx.user_id, run_id
    )
    try:
        await ctx.services.engine.start(
            CreateDomainWorkflow.run,
            CreateDomainInput(str(domain_id), domain.name),
            run_id=run_id,
            # Keep the row, marked FAILED with a reason, so nothing vanishes silently.
            undo=lambda: ctx.services.postgres.set_domain_status(
                domain_id, DomainStatus.FAILED, "could not start the creation workflow"
            ),
        )
    except StoreError as exc:
        raise StoreError(f"{exc}; the domain was marked FAILED") from exc
    ctx.loaders.domain.prime(domain.id, domain)
    return domain, run


@dataclass(frozen=True)
class OwnerOperation:
    """A run over a whole domain that only its owners start."""

    kind: str  # the run's kind; its id is this in kebab case, the domain id and a suffix
    argument: str  # the argument that names the domain, for refusals
    begin: Callable[[PostgresStore, UUID, NewRun], Awaitable[RunRow | None]]
    workflow: MethodAsyncSingleParam[Any, Any, Any]
    request: Callable[[str], object]  # the workflow's input, from the domain id
    busy: str  # why it cannot start while the domain is in another state
    status: DomainStatus  # the domain's status while the run holds it
    settled: DomainStatus  # where the domain goes back to when the run cannot be started
    not_started: str


# The workflow stops the domain's other runs and waits for them before it purges anything.
DELETION = OwnerOperation(
    "DELETE_DOMAIN",
    "id",
    PostgresStore.begin_domain_deletion,
    DeleteDomainWorkflow.run,
    DeleteDomainInput,
    "the domain is already being deleted",
    DomainStatus.DELETING,
    DomainStatus.FAILED,
    "could not start the delete workflow; delete the domain again",
)
REBUILD = OwnerOperation(
    "REBUILD_GRAPH",
    "domainId",
    PostgresStore.begin_rebuild,
    RebuildGraphWorkflow.run,
    RebuildGraphInput,
    "the domain must be ACTIVE with no document being processed or deleted",
    DomainStatus.REBUILDING,
    DomainStatus.ACTIVE,
    "could not start the graph rebuild; the graph is unchanged",
)


async def start_owner_run(
    ctx: Context, domain_id: UUID, operation: OwnerOperation
) -> RunRow | Refusal:
    refusal = await require(
        ctx,
        domain_id,
        Permission.ADMINISTER,
        Refusal("NOT_FOUND", "domain not found", operation.argument),
    )
    if refusal:
        return refusal
    postgres = ctx.services.postgres
    prefix = operation.kind.lower().replace("_", "-")
    new_run = NewRun(f"{prefix}-{domain_id}-{run_suffix()}", operation.kind, ctx.user_id)
    run = await operation.begin(postgres, domain_id, new_run)
    if run is None:
        return Refusal("BUSY", operation.busy, operation.argument)
    await ctx.services.engine.start(
        operation.workflow,
        operation.request(str(domain_id)),
        run_id=run.id,
        undo=lambda: postgres.set_domain_status(
            domain_id, operation.settled, operation.not_started, expected=[operation.status]
        ),
    )
    return run
