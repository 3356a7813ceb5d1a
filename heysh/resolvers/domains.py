"""Fetching and creating domains."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID, uuid4

from heysh.context import Context
from heysh.errors import StoreError
from heysh.resolvers.pagination import Page, PageRequest, page_of
from heysh.resolvers.text import LINE_BREAKS, refused_character
from heysh.stores.documents import DocumentRow
from heysh.stores.postgres import DomainRow, DomainStatus, PageKey, RunRow
from heysh.workflows.create_domain import CreateDomainInput, CreateDomainWorkflow, workflow_id

log = logging.getLogger(__name__)


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
        await ctx.services.temporal.start_workflow(
            CreateDomainWorkflow.run,
            CreateDomainInput(str(domain_id), domain.name),
            id=run_id,
            task_queue=ctx.services.settings.task_queue,
        )
    except Exception as exc:
        # Keep the row, marked FAILED with a reason, so nothing vanishes silently.
        log.exception("could not start CreateDomain for %s", domain_id)
        await ctx.services.postgres.set_domain_status(
            domain_id, DomainStatus.FAILED, "could not start the creation workflow"
        )
        raise StoreError(
            "the workflow service is unavailable; the domain was marked FAILED"
        ) from exc
    ctx.loaders.domain.prime(domain.id, domain)
    return domain, run
