"""Domain metadata, membership and run bookkeeping in Supabase Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from heysh.telemetry.tracing import untraced


class DomainStatus(StrEnum):
    CREATING = "CREATING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    DELETING = "DELETING"
    REBUILDING = "REBUILDING"


class MemberRole(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


@dataclass(frozen=True)
class DomainRow:
    id: UUID
    name: str
    description: str
    status: DomainStatus
    error: str | None
    created_by: UUID
    created_at: datetime

    def __post_init__(self) -> None:
        # psycopg hands Postgres enums over as text.
        object.__setattr__(self, "status", DomainStatus(self.status))


@dataclass(frozen=True)
class RunRow:
    id: str
    domain_id: UUID
    kind: str
    subject_id: UUID | None
    started_by: UUID
    created_at: datetime
    # The run's last recorded state (heysh.stores.runs writes it); status None: no event yet.
    status: str | None = None
    stage: str | None = None
    progress: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_seq: int = 0


@dataclass(frozen=True)
class NewRun:
    """A run about to be recorded alongside the state change that starts it."""

    id: str
    kind: str
    started_by: UUID


@dataclass(frozen=True)
class PageKey:
    """Keyset position in a newest-first listing: (created_at, id), both descending."""

    created_at: datetime
    id: UUID


_Row = TypeVar("_Row")

_DOMAIN_COLUMNS = "d.id, d.name, d.description, d.status, d.error, d.created_by, d.created_at"
RUN_FIELDS = tuple(f.name for f in fields(RunRow))
RUN_COLUMNS = ", ".join(RUN_FIELDS)


def create_pool(database_url: str, max_size: int) -> AsyncConnectionPool:
    # prepare_threshold=None keeps us compatible with Supabase's transaction-mode pooler.
    # check: idle connections die with a database restart or failover, and the pool cannot
    # tell until one is used; checking each on checkout hands out only live ones.
    return AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={"prepare_threshold": None, "autocommit": True},
        check=untraced(AsyncConnectionPool.check_connection),
        open=False,
    )


class PooledStore:
    """The base of each store of heysh's Postgres tables: it works through the process's pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _fetch(self, row_type: type[_Row], sql: str, params: Sequence[Any]) -> list[_Row]:
        return await fetch_rows(self._pool, row_type, sql, params)

    async def _member_rows(
        self,
        row_type: type[_Row],
        select: str,
        domain_column: str,
        user_id: UUID,
        ids: Sequence[UUID],
    ) -> list[_Row]:
        """The rows of ``select`` (from a table as ``d``) among ``ids`` (``d.id``) whose domain
        (``domain_column``) has ``user_id`` as a member: the api's reads by id."""
        return await self._fetch(
            row_type,
            f"{select} join heysh.domain_members m on m.domain_id = {domain_column}"
            " and m.user_id = %s where d.id = any(%s)",
            (user_id, list(ids)),
        )


class PostgresStore(PooledStore):
    async def ping(self) -> None:
        async with self._pool.connection(timeout=5) as conn:
            await conn.execute("select 1")

    async def create_domain(
        self, domain_id: UUID, name: str, description: str, owner: UUID, run_id: str
    ) -> tuple[DomainRow, RunRow]:
        """Insert the domain, its owner membership and its creating run in one transaction."""
        async with self._pool.connection() as conn, conn.transaction():
            domain = await fetch_row(
                conn,
                DomainRow,
                "insert into heysh.domains as d (id, name, description, created_by)"
                f" values (%s, %s, %s, %s) returning {_DOMAIN_COLUMNS}",
                (domain_id, name, description, owner),
            )
            await conn.execute(
                "insert into heysh.domain_members (domain_id, user_id, role) values (%s, %s, %s)",
                (domain_id, owner, MemberRole.OWNER.value),
            )
            run = await insert_run(conn, run_id, domain_id, "CREATE_DOMAIN", domain_id, owner)
        assert domain is not None
        return domain, run

    async def set_domain_status(
        self,
        domain_id: UUID,
        status: DomainStatus,
        error: str | None = None,
        *,
        expected: Sequence[DomainStatus] | None = None,
    ) -> bool:
        """Set the status; with ``expected``, only from one of those, so a workflow that lost
        the domain to another (a delete during creation) cannot write over it."""
        allowed = [s.value for s in expected] if expected is not None else None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "update heysh.domains set status = %s, error = %s, updated_at = now()"
                " where id = %s and (%s::text[] is null or status::text = any(%s::text[]))",
                (status.value, error, domain_id, allowed, allowed),
            )
            return cur.rowcount == 1

    async def begin_domain_deletion(self, domain_id: UUID, run: NewRun) -> RunRow | None:
        """DELETING and the deleting run, in one transaction; None when a delete already holds it.

        Taking the row lock here orders this against addDocument and reprocess, which share-lock
        an ACTIVE domain: every run they record is visible to the delete that follows.
        """
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "update heysh.domains set status = 'DELETING', error = null, updated_at = now()"
                " where id = %s and status <> 'DELETING'",
                (domain_id,),
            )
            if cur.rowcount != 1:
                return None
            return await insert_run(conn, run.id, domain_id, run.kind, domain_id, run.started_by)

    async def delete_domain(self, domain_id: UUID) -> bool:
        """Deletes the row; members and documents cascade (runs stay, see workflow_runs)."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute("delete from heysh.domains where id = %s", (domain_id,))
            await notify_access_changed(conn, domain_id)
            return cur.rowcount == 1

    async def begin_rebuild(self, domain_id: UUID, run: NewRun) -> RunRow | None:
        """ACTIVE to REBUILDING and the rebuilding run, only when no document is mid-run."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "update heysh.domains set status = 'REBUILDING', error = null, updated_at = now()"
                " where id = %s and status = 'ACTIVE' and not exists (select 1"
                "  from heysh.documents d where d.domain_id = %s"
                "  and d.status in ('PENDING', 'PROCESSING', 'DELETING'))",
                (domain_id, domain_id),
            )
            if cur.rowcount != 1:
                return None
            return await insert_run(conn, run.id, domain_id, run.kind, domain_id, run.started_by)

    async def run_ids_page(
        self, domain_id: UUID, after: str | None, limit: int, *, exclude: str
    ) -> list[str]:
        """The domain's recorded runs in id order, a page at a time (keyset, not offset)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select id from heysh.workflow_runs where domain_id = %s and id <> %s"
                " and (%s::text is null or id > %s) order by id limit %s",
                (domain_id, exclude, after, after, limit),
            )
            return [row[0] for row in await cur.fetchall()]

    async def visible_domains(self, user_id: UUID, domain_ids: Sequence[UUID]) -> list[DomainRow]:
        """The domains among ``domain_ids`` that ``user_id`` is a member of."""
        return await self._member_rows(
            DomainRow, f"select {_DOMAIN_COLUMNS} from heysh.domains d", "d.id", user_id, domain_ids
        )

    async def domain_page(
        self, user_id: UUID, limit: int, after: PageKey | None
    ) -> list[DomainRow]:
        """Newest first; fetches ``limit`` rows after the keyset position."""
        where, params = "", [user_id]
        if after is not None:
            where = " where (d.created_at, d.id) < (%s, %s)"
            params.extend([after.created_at, after.id])  # type: ignore[list-item]
        return await self._fetch(
            DomainRow,
            f"select {_DOMAIN_COLUMNS} from heysh.domains d"
            " join heysh.domain_members m on m.domain_id = d.id and m.user_id = %s"
            f"{where} order by d.created_at desc, d.id desc limit %s",
            (*params, limit),
        )

    async def roles(self, user_id: UUID, domain_ids: Sequence[UUID]) -> dict[UUID, MemberRole]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select domain_id, role from heysh.domain_members"
                " where user_id = %s and domain_id = any(%s)",
                (user_id, list(domain_ids)),
            )
            return {row[0]: MemberRole(row[1]) for row in await cur.fetchall()}

    async def memberships(self, user_id: UUID) -> dict[UUID, MemberRole]:
        """Every domain the user belongs to, with their role there."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select domain_id, role from heysh.domain_members where user_id = %s", (user_id,)
            )
            return {row[0]: MemberRole(row[1]) for row in await cur.fetchall()}

    async def visible_runs(self, user_id: UUID, run_ids: Sequence[str]) -> list[RunRow]:
        """Runs of the user's domains, and runs the user started (a finished deleteDomain stays
        readable to whoever started it after the domain and its memberships are gone)."""
        return await self._fetch(
            RunRow,
            f"select {RUN_COLUMNS} from heysh.workflow_runs r where r.id = any(%s)"
            " and (r.started_by = %s or exists (select 1 from heysh.domain_members m"
            "  where m.domain_id = r.domain_id and m.user_id = %s))",
            (list(run_ids), user_id, user_id),
        )

    async def latest_runs(self, subject_ids: Sequence[UUID]) -> dict[UUID, RunRow]:
        rows = await self._fetch(
            RunRow,
            f"select distinct on (subject_id) {RUN_COLUMNS} from heysh.workflow_runs"
            " where subject_id = any(%s)"
            " order by subject_id, created_at desc",
            (list(subject_ids),),
        )
        return {row.subject_id: row for row in rows if row.subject_id is not None}


async def insert_run(
    conn: AsyncConnection[Any],
    run_id: str,
    domain_id: UUID,
    kind: str,
    subject_id: UUID | None,
    started_by: UUID,
) -> RunRow:
    """Record a run inside the caller's transaction."""
    run = await fetch_row(
        conn,
        RunRow,
        "insert into heysh.workflow_runs (id, domain_id, kind, subject_id, started_by)"
        f" values (%s, %s, %s, %s, %s) returning {RUN_COLUMNS}",
        (run_id, domain_id, kind, subject_id, started_by),
    )
    assert run is not None
    return run


ACCESS_CHANNEL = "heysh_access"


async def notify_access_changed(conn: AsyncConnection[Any], domain_id: UUID) -> None:
    """Tell every api (on commit) that who may read the domain changed: live subscriptions
    re-check their caller."""
    await conn.execute("select pg_notify(%s, %s)", (ACCESS_CHANNEL, str(domain_id)))


async def fetch_rows(
    pool: AsyncConnectionPool, row_type: type[_Row], sql: str, params: Sequence[Any]
) -> list[_Row]:
    """Run one query and build a ``row_type`` (a dataclass) from each row."""
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(row_type)) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def fetch_row(
    conn: AsyncConnection[Any], row_type: type[_Row], sql: str, params: Sequence[Any]
) -> _Row | None:
    """Run one statement on the caller's connection (inside its transaction, if any) and build a
    ``row_type`` from its first row; None when it returns none."""
    async with conn.cursor(row_factory=class_row(row_type)) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()
