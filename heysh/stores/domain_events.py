"""The domain event outbox (written by triggers, see the domain_events migration), read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from heysh.stores.postgres import PooledStore

DOMAIN_EVENTS_CHANNEL = "heysh_domain_events"


@dataclass(frozen=True)
class DomainEventRow:
    domain_id: UUID
    seq: int
    kind: str  # DOCUMENT_ADDED, DOCUMENT_STATUS_CHANGED, DOCUMENT_DELETED, RUN_STARTED, RUN_ENDED
    document_id: UUID | None
    run_id: str | None
    run_kind: str | None
    status: str | None
    at: datetime


class DomainEventStore(PooledStore):
    async def events(self, domain_id: UUID, after: int, limit: int = 1000) -> list[DomainEventRow]:
        """The domain's events with ``seq`` above ``after``, in order, at most ``limit``."""
        return await self._fetch(
            DomainEventRow,
            "select domain_id, seq, kind, document_id, run_id, run_kind, status, at"
            " from heysh.domain_events where domain_id = %s and seq > %s"
            " order by seq limit %s",
            (domain_id, after, limit),
        )

    async def latest_seq(self, domain_id: UUID) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "select last_seq from heysh.domain_event_counters where domain_id = %s",
                (domain_id,),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0
