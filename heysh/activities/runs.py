"""The activity that copies a run's progress into Postgres, where the api reads and streams it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import activity

from heysh.stores.runs import RunStore
from heysh.workflows.progress import RunProgress


@dataclass
class RecordRunEvents:
    run_id: str
    progress: RunProgress  # its events from ``from_seq`` on are new; the rest were recorded
    from_seq: int


@dataclass
class RecordedRunEvents:
    inserted: int  # 0 when a retry or replay finds them stored already


class RunActivities:
    def __init__(self, runs: RunStore) -> None:
        self._runs = runs

    @activity.defn(name="record_run_events")
    async def record_run_events(self, request: RecordRunEvents) -> RecordedRunEvents:
        events = [e for e in request.progress.events if e.seq >= request.from_seq]
        inserted = await self._runs.record(request.run_id, request.progress, events)
        return RecordedRunEvents(inserted)

    def all(self) -> list[Callable[..., Any]]:
        return [self.record_run_events]
