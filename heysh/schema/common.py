"""Types shared by every area: users, typed user errors, global id parsing."""

from __future__ import annotations

from enum import Enum
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.relay import GlobalIDValueError

from heysh.resolvers.access import Refusal


@strawberry.enum(description="Why a mutation refused its input.")
class UserErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    BUSY = "BUSY"
    CONTENT_EMPTY = "CONTENT_EMPTY"
    CONTENT_TOO_LARGE = "CONTENT_TOO_LARGE"
    CONTENT_NOT_UTF8 = "CONTENT_NOT_UTF8"


@strawberry.type(description="An expected failure, returned as data: fix the input and retry.")
class UserError:
    code: UserErrorCode
    message: str
    field: str | None = strawberry.field(
        default=None, description="The input field at fault, when one is."
    )


def user_error(refusal: Refusal) -> UserError:
    return UserError(code=UserErrorCode[refusal.code], message=refusal.message, field=refusal.field)


@strawberry.type(description="A Supabase Auth user, identified by its auth.users id.")
class User:
    id: strawberry.ID


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def parse_global_uuid(value: str, type_name: str) -> UUID | None:
    """The UUID inside a global id of ``type_name``; None for anything else."""
    node_id = parse_global_id(value, type_name)
    return parse_uuid(node_id) if node_id is not None else None


def parse_global_id(value: str, type_name: str) -> str | None:
    """The node id inside a global id of ``type_name``; None for anything else."""
    try:
        global_id = relay.GlobalID.from_id(value)
    except GlobalIDValueError:
        return None
    return global_id.node_id if global_id.type_name == type_name else None
