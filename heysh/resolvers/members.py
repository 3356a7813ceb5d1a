"""Who belongs to a domain: listed, added and removed by its owners."""

from __future__ import annotations

from uuid import UUID

from heysh.context import Context
from heysh.policy import Permission
from heysh.resolvers.access import Refusal, require
from heysh.resolvers.pagination import Page, PageRequest, page_of
from heysh.stores.members import MemberRow, Refused
from heysh.stores.postgres import MemberRole, PageKey

NOT_FOUND_DOMAIN = Refusal("NOT_FOUND", "domain not found", "domainId")
LAST_OWNER = Refusal(
    "INVALID_INPUT", "a domain needs an owner: make someone else owner first", "userId"
)
NOT_A_MEMBER = Refusal("NOT_FOUND", "that user is not a member of the domain", "userId")


async def set_member(
    ctx: Context, domain_id: UUID, user_id: UUID, role: MemberRole
) -> MemberRow | Refusal:
    refusal = await require(ctx, domain_id, Permission.ADMINISTER, NOT_FOUND_DOMAIN)
    if refusal:
        return refusal
    changed = await ctx.services.members.set_role(domain_id, user_id, role)
    return changed if isinstance(changed, MemberRow) else LAST_OWNER


async def remove_member(ctx: Context, domain_id: UUID, user_id: UUID) -> Refusal | None:
    refusal = await require(ctx, domain_id, Permission.ADMINISTER, NOT_FOUND_DOMAIN)
    if refusal:
        return refusal
    refused = await ctx.services.members.remove(domain_id, user_id)
    if refused is Refused.LAST_OWNER:
        return LAST_OWNER
    return NOT_A_MEMBER if refused is Refused.NOT_A_MEMBER else None


async def member_page(
    ctx: Context, domain_id: UUID, request: PageRequest[PageKey]
) -> Page[MemberRow] | None:
    """The members, for an owner of the domain; None for anyone else."""
    if await require(ctx, domain_id, Permission.ADMINISTER, NOT_FOUND_DOMAIN):
        return None
    rows = await ctx.services.members.page(domain_id, request.fetch, request.after)
    return page_of(request, rows)
