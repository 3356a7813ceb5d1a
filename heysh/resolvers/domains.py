"""Fetching and creating domains."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from heysh.context import Context
from heysh.errors import StoreError
from heysh.resolvers.text import LINE_BREAKS, refused_character
from heysh.stores.postgres import DomainPageKey, DomainRow, DomainStatus, RunRow
from heysh.workflows.create_domain import CreateDomainInput, CreateDomainWorkflow, workflow_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputProblem:
    field: str
    message: str


@dataclass(frozen=True)
class DomainPage:
    rows: list[DomainRow]
    has_next_page: bool
    has_previous_page: bool


def encode_cursor(row: DomainRow) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> DomainPageKey | None:
    try:
        created_at, domain_id = base64.urlsafe_b64decode(cursor).decode().split("|")
        return DomainPageKey(datetime.fromisoformat(created_at), UUID(domain_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


async def domain_page(ctx: Context, first: int, after: str | None) -> DomainPage | InputProblem:
    limit = ctx.services.settings.max_page_size
    if not 0 <= first <= limit:
        return InputProblem("first", f"first must be between 0 and {limit}")
    key = decode_cursor(after) if after else None
    if after and key is None:
        return InputProblem("after", "after is not a cursor this API issued")
    rows = await ctx.services.postgres.domain_page(ctx.user_id, first + 1, key)
    for row in rows[:first]:
        ctx.loaders.domain.prime(row.id, row)
    return DomainPage(
        rows[:first], has_next_page=len(rows) > first, has_previous_page=key is not None
    )


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
