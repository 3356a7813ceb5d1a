"""Domain membership: the roles that decide what each user may do in a domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from heysh.context import Info
from heysh.resolvers import members as resolve
from heysh.resolvers.access import Refusal
from heysh.schema.common import User, UserError, parse_global_uuid, parse_uuid, user_error
from heysh.stores.members import MemberRow
from heysh.stores.postgres import MemberRole as StoreMemberRole

MemberRole = strawberry.enum(StoreMemberRole, name="MemberRole")

BAD_USER_ID = Refusal("INVALID_INPUT", "userId must be a Supabase user id (a UUID)", "userId")


@strawberry.type(description="A user's role in a domain.")
class DomainMember:
    user: User
    role: MemberRole  # type: ignore[valid-type]
    added_at: datetime

    @classmethod
    def from_row(cls, row: MemberRow) -> DomainMember:
        return cls(
            user=User(id=strawberry.ID(str(row.user_id))), role=row.role, added_at=row.created_at
        )


@strawberry.input
class DomainMemberInput:
    domain_id: strawberry.ID
    user_id: strawberry.ID = strawberry.field(description="The user's Supabase auth.users id.")
    role: MemberRole  # type: ignore[valid-type]


@strawberry.type
class DomainMemberSuccess:
    domain_id: strawberry.ID
    member: DomainMember


@strawberry.type
class RemoveDomainMemberSuccess:
    domain_id: strawberry.ID
    user_id: strawberry.ID


SetDomainMemberPayload = Annotated[
    DomainMemberSuccess | UserError, strawberry.union("SetDomainMemberPayload")
]
RemoveDomainMemberPayload = Annotated[
    RemoveDomainMemberSuccess | UserError, strawberry.union("RemoveDomainMemberPayload")
]


@strawberry.type
class MemberMutations:
    @strawberry.mutation(
        description="Add a user to a domain with a role, or change their role (owners only). "
        "The last owner cannot be demoted."
    )
    async def add_domain_member(
        self, info: Info, input: DomainMemberInput
    ) -> SetDomainMemberPayload:
        domain_id = parse_global_uuid(input.domain_id, "Domain")
        if domain_id is None:
            return user_error(resolve.NOT_FOUND_DOMAIN)
        user_id = parse_uuid(input.user_id)
        if user_id is None:
            return user_error(BAD_USER_ID)
        result = await resolve.set_member(info.context, domain_id, user_id, input.role)
        if isinstance(result, Refusal):
            return user_error(result)
        return DomainMemberSuccess(domain_id=input.domain_id, member=DomainMember.from_row(result))

    @strawberry.mutation(
        description="Remove a user from a domain (owners only). The last owner cannot be removed."
    )
    async def remove_domain_member(
        self, info: Info, domain_id: strawberry.ID, user_id: strawberry.ID
    ) -> RemoveDomainMemberPayload:
        domain = parse_global_uuid(domain_id, "Domain")
        if domain is None:
            return user_error(resolve.NOT_FOUND_DOMAIN)
        user = parse_uuid(user_id)
        if user is None:
            return user_error(BAD_USER_ID)
        refusal = await resolve.remove_member(info.context, domain, user)
        if refusal is not None:
            return user_error(refusal)
        return RemoveDomainMemberSuccess(domain_id=domain_id, user_id=strawberry.ID(str(user)))
