"""Workflow runs: the handle every long-running mutation returns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.resolvers.runs import RunState
from heysh.schema.common import parse_global_id
from heysh.workflows.progress import RunStatus, StepStatus

WorkflowRunStatus = strawberry.enum(RunStatus, name="WorkflowRunStatus")
WorkflowStepStatus = strawberry.enum(StepStatus, name="WorkflowStepStatus")


@strawberry.type
class WorkflowStep:
    name: str
    status: WorkflowStepStatus  # type: ignore[valid-type]
    done: int = strawberry.field(description="Items done in this step (e.g. chunks).")
    total: int = strawberry.field(description="Items this step will process; 0 if not counted.")


@strawberry.type(description="A durable workflow run; its state is read from the workflow itself.")
class WorkflowRun(relay.Node):
    id: relay.NodeID[str]
    kind: str
    status: WorkflowRunStatus  # type: ignore[valid-type]
    stage: str
    progress: float = strawberry.field(description="Fraction of steps done, 0..1.")
    steps: list[WorkflowStep]
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def from_state(cls, state: RunState) -> WorkflowRun:
        return cls(
            id=state.id,
            kind=state.kind,
            status=state.status,
            stage=state.stage,
            progress=state.progress,
            steps=[
                WorkflowStep(name=s.name, status=s.status, done=s.done, total=s.total)
                for s in state.steps
            ],
            started_at=state.started_at,
            finished_at=state.finished_at,
            error=state.error,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WorkflowRun | None]:
        loaders = info.context.loaders
        ids = list(node_ids)
        runs = await loaders.run.load_many(ids)
        visible = [run.id for run in runs if run is not None]
        states = {s.id: s for s in await loaders.run_state.load_many(visible)}
        return [cls.from_state(states[i]) if i in states else None for i in ids]


async def load_run(info: Info, run_id: str) -> WorkflowRun | None:
    (run,) = await WorkflowRun.resolve_nodes(info=info, node_ids=[run_id])
    return run


@strawberry.type
class RunQueries:
    @strawberry.field(description="A workflow run the caller can see, by global id.")
    async def workflow_run(self, info: Info, id: strawberry.ID) -> WorkflowRun | None:
        run_id = parse_global_id(id, "WorkflowRun")
        return await load_run(info, run_id) if run_id else None
