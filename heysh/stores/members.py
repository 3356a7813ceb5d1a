"""Domain membership in Supabase Postgres: who may see and change a domain, and how."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from heysh.stores.postgres import (
    MemberRole,
    PageKey,
    PooledStore,
    fetch_row,
    notify_access_changed,
)


@dataclass(frozen=True)
class MemberRow:
    domain_id: UUID
    user_id: UUID
    role: MemberRole
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", MemberRole(self.role))


class Refused(Enum):
    """Why a membership change was not made."""

    LAST_OWNER = "LAST_OWNER"  # it would leave the domain without an owner
    NOT_A_MEMBER = "NOT_A_MEMBER"


_COLUMNS = "domain_id, user_id, role, created_at"


class MemberStore(PooledStore):
    async def set_role(
        self, domain_id: UUID, user_id: UUID, role: MemberRole
    ) -> MemberRow | Refused:
        """The member as now; ``Refused.LAST_OWNER`` when it would demote the last owner."""
        async with self._pool.connection() as conn, conn.transaction():
            await _lock_domain(conn, domain_id)
            if role is not MemberRole.OWNER and await _is_last_owner(conn, domain_id, user_id):
                return Refused.LAST_OWNER
            row = await fetch_row(
                conn,
                MemberRow,
                "insert into heysh.domain_members (domain_id, user_id, role)"
                " values (%s, %s, %s) on conflict (domain_id, user_id)"
                f" do update set role = excluded.role returning {_COLUMNS}",
                (domain_id, user_id, role.value),
            )
            await notify_access_changed(conn, domain_id)
        assert row is not None
        return row

    async def remove(self, domain_id: UUID, user_id: UUID) -> Refused | None:
        """Remove the user's membership; never the last owner's."""
        async with self._pool.connection() as conn, conn.transaction():
            await _lock_domain(conn, domain_id)
            if await _is_last_owner(conn, domain_id, user_id):
                return Refused.LAST_OWNER
            cur = await conn.execute(
                "delete from heysh.domain_members where domain_id = %s and user_id = %s",
                (domain_id, user_id),
            )
            if cur.rowcount != 1:
                return Refused.NOT_A_MEMBER
            await notify_access_changed(conn, domain_id)
            return None

    async def page(self, domain_id: UUID, limit: int, after: PageKey | None) -> list[MemberRow]:
        """The domain's members, newest first (keyset on when they joined, then user id)."""
        created_at, user_id = (after.created_at, after.id) if after else (None, None)
        return await self._fetch(
            MemberRow,
            f"select {_COLUMNS} from heysh.domain_members where domain_id = %s"
            " and (%s::timestamptz is null or (created_at, user_id) < (%s, %s::uuid))"
            " order by created_at desc, user_id desc limit %s",
            (domain_id, created_at, created_at, user_id, limit),
        )


async def _lock_domain(conn: AsyncConnection[Any], domain_id: UUID) -> None:
    # Membership changes of one domain take turns: two owners removing each other at once
    # must not both see the other still there and leave the domain with none.
    await conn.execute("select 1 from heysh.domains where id = %s for update", (domain_id,))


async def _is_last_owner(conn: AsyncConnection[Any], domain_id: UUID, user_id: UUID) -> bool:
    cur = await conn.execute(
        "select coalesce(bool_and(user_id = %s), false) from heysh.domain_members"
        " where domain_id = %s and role = 'owner'",
        (user_id, domain_id),
    )
    row = await cur.fetchone()
    return bool(row and row[0])
