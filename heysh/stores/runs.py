"""Run progress in Postgres: each run's ordered events and a snapshot of its state.

The workflows record through an activity that may run more than once (retries, replays after a
worker crash). Each event's ``seq`` is given by the workflow, which replays identically, so a
record is an insert that ignores rows already present: ``seq`` stays gapless and stable, and no
event is ever duplicated. The snapshot moves only forward (by ``last_seq``). Each record
notifies ``RUN_EVENTS_CHANNEL`` in the same transaction, so a listener learns of an event only
once it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from heysh.stores.postgres import RUN_COLUMNS, PooledStore, RunRow, fetch_row
from heysh.workflows.progress import RunEvent, RunProgress

RUN_EVENTS_CHANNEL = "heysh_run_events"


@dataclass(frozen=True)
class RunEventRow:
    run_id: str
    seq: int
    stage: str
    status: str
    progress: float
    message: str
    at: datetime


class RunStore(PooledStore):
    async def record(self, run_id: str, progress: RunProgress, events: Sequence[RunEvent]) -> int:
        """Append ``events`` (those not yet stored) and move the snapshot to ``progress``;
        returns how many events were new. A run heysh did not register records nothing."""
        if not events:
            return 0
        last_seq = max(e.seq for e in events)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "insert into heysh.run_events (run_id, seq, stage, status, progress, message, at)"
                " select %s, e.seq, e.stage, e.status, e.progress, e.message, e.at"
                " from unnest(%s::int[], %s::text[], %s::text[], %s::real[], %s::text[],"
                "  %s::timestamptz[]) as e(seq, stage, status, progress, message, at)"
                " where exists (select 1 from heysh.workflow_runs where id = %s)"
                " on conflict (run_id, seq) do nothing",
                (
                    run_id,
                    [e.seq for e in events],
                    [e.stage for e in events],
                    [e.status.value for e in events],
                    [e.progress for e in events],
                    [e.message for e in events],
                    [e.at for e in events],
                    run_id,
                ),
            )
            inserted = cur.rowcount
            await conn.execute(
                "update heysh.workflow_runs set status = %s, stage = %s, progress = %s,"
                " steps = %s, error = %s, started_at = %s, finished_at = %s, last_seq = %s"
                " where id = %s and last_seq < %s",
                (
                    progress.status.value,
                    progress.stage,
                    progress.fraction,
                    Jsonb([asdict(step) for step in progress.steps]),
                    progress.error,
                    progress.started_at,
                    progress.finished_at,
                    last_seq,
                    run_id,
                    last_seq,
                ),
            )
            if inserted:
                await conn.execute(
                    "select pg_notify(%s, %s)", (RUN_EVENTS_CHANNEL, f"{run_id} {last_seq}")
                )
            return inserted

    async def events(self, run_id: str, after: int, limit: int = 1000) -> list[RunEventRow]:
        """The run's events with ``seq`` above ``after``, in order."""
        return await self._fetch(
            RunEventRow,
            "select run_id, seq, stage, status, progress, message, at from heysh.run_events"
            " where run_id = %s and seq > %s order by seq limit %s",
            (run_id, after, limit),
        )

    async def run(self, run_id: str) -> RunRow | None:
        """The run and its snapshot, unchecked (the caller has authorized the reader)."""
        async with self._pool.connection() as conn:
            return await fetch_row(
                conn,
                RunRow,
                f"select {RUN_COLUMNS} from heysh.workflow_runs where id = %s",
                (run_id,),
            )
