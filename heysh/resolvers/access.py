"""Refusals as data, and the one check of a caller's permission on a domain."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from heysh.context import Context
from heysh.policy import Permission, allows


@dataclass(frozen=True)
class Refusal:
    """An expected failure for the caller: becomes a typed UserError."""

    code: str  # a UserErrorCode name
    message: str
    field: str | None = None


async def require(
    ctx: Context, domain_id: UUID, permission: Permission, hidden: Refusal
) -> Refusal | None:
    """None when the caller may; ``hidden`` for a non-member, exactly as for an unknown id."""
    role = await ctx.loaders.role.load(domain_id)
    if role is None:
        return hidden  # non-members learn nothing, not even that the domain exists
    if not allows(role, permission):
        return Refusal("FORBIDDEN", f"your role ({role.value}) does not allow this")
    return None
