"""Workflow run state, read from each workflow's own durable state in Temporal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from heysh.stores.postgres import RunRow
from heysh.workflows.progress import RunOutput, RunProgress, RunStatus, RunStep

RPC_TIMEOUT = timedelta(seconds=5)

_CLOSED_STATUS = {
    WorkflowExecutionStatus.CANCELED: RunStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED: RunStatus.CANCELED,
}


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
    def from_progress(cls, run_id: str, progress: RunProgress) -> RunState:
        return cls(
            id=run_id,
            kind=progress.kind,
            status=progress.status,
            stage=progress.stage,
            progress=progress.fraction,
            steps=list(progress.steps),
            started_at=_parse(progress.started_at),
            finished_at=_parse(progress.finished_at),
            error=progress.error,
        )

    @classmethod
    def queued(cls, run: RunRow) -> RunState:
        return cls(
            run.id, run.kind, RunStatus.RUNNING, "queued", 0.0, [], run.created_at, None, None
        )


async def run_states(temporal: TemporalClient, runs: list[RunRow]) -> list[RunState]:
    return list(await asyncio.gather(*(run_state(temporal, run) for run in runs)))


async def run_state(temporal: TemporalClient, run: RunRow) -> RunState:
    """Live state from the workflow's query handler; final state from its result in history."""
    handle = temporal.get_workflow_handle(run.id, result_type=RunOutput)
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError:
        return RunState.queued(run)
    status = description.status
    if status == WorkflowExecutionStatus.RUNNING:
        try:
            progress = await handle.query(
                "progress", result_type=RunProgress, rpc_timeout=RPC_TIMEOUT
            )
        except RPCError:
            progress = None  # no worker has picked the run up yet
        return RunState.from_progress(run.id, progress) if progress else RunState.queued(run)
    if status == WorkflowExecutionStatus.COMPLETED:
        output = await handle.result(rpc_timeout=RPC_TIMEOUT)
        return RunState.from_progress(run.id, output.progress)
    final = _CLOSED_STATUS.get(status, RunStatus.FAILED) if status else RunStatus.FAILED
    return RunState(
        id=run.id,
        kind=run.kind,
        status=final,
        stage="done",
        progress=0.0,
        steps=[],
        started_at=description.start_time,
        finished_at=description.close_time,
        error=f"workflow {final.value.lower()}",
    )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
