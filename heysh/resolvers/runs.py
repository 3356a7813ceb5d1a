"""Workflow run state, read from the snapshot the workflows keep in Postgres (no Temporal call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from heysh.stores.postgres import RunRow
from heysh.workflows.progress import RunStatus, RunStep, StepStatus


@dataclass(frozen=True)
class RunState:
    id: str
    kind: str
    status: RunStatus
    stage: str
    progress: float
    steps: list[RunStep]
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def from_row(cls, run: RunRow) -> RunState:
        """The run as last recorded; a run with no event yet is queued (no worker took it)."""
        if run.status is None:
            return cls.queued(run)
        return cls(
            id=run.id,
            kind=run.kind,
            status=RunStatus(run.status),
            stage=run.stage or "queued",
            progress=run.progress,
            steps=[
                RunStep(s["name"], StepStatus(s["status"]), int(s["done"]), int(s["total"]))
                for s in run.steps
            ],
            started_at=run.started_at,
            finished_at=run.finished_at,
            error=run.error,
        )

    @classmethod
    def queued(cls, run: RunRow) -> RunState:
        return cls(
            run.id, run.kind, RunStatus.RUNNING, "queued", 0.0, [], run.created_at, None, None
        )
