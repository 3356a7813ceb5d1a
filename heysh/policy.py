"""Who may do what in a domain: the one place roles turn into permissions."""

from __future__ import annotations

from enum import StrEnum

from heysh.stores.postgres import MemberRole


class Permission(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    ADMINISTER = "administer"


GRANTS: dict[MemberRole, frozenset[Permission]] = {
    MemberRole.OWNER: frozenset(Permission),
    MemberRole.EDITOR: frozenset({Permission.VIEW, Permission.EDIT}),
    MemberRole.VIEWER: frozenset({Permission.VIEW}),
}


def allows(role: MemberRole | None, permission: Permission) -> bool:
    """A non-member (role None) has no permission, not even to learn the domain exists."""
    return role is not None and permission in GRANTS[role]
