"""Workflow runs: the handle every long-running mutation returns."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.errors import NotFoundError
from heysh.resolvers import runs as resolve
from heysh.resolvers.access import Refusal
from heysh.schema.common import UserError, parse_global_id, user_error
from heysh.stores.postgres import RunRow
from heysh.workflows.progress import RunStatus, StepStatus

WorkflowRunStatus = strawberry.enum(RunStatus, name="WorkflowRunStatus")
WorkflowStepStatus = strawberry.enum(StepStatus, name="WorkflowStepStatus")


@strawberry.type
class WorkflowStep:
    name: str
    status: WorkflowStepStatus  # type: ignore[valid-type]
    done: int = strawberry.field(description="Items done in this step (e.g. chunks).")
    total: int = strawberry.field(description="Items this step will process; 0 if not counted.")


@strawberry.type(description="A durable workflow run, as its workflow last recorded it.")
class WorkflowRun(relay.Node):
    id: relay.NodeID[str]
    kind: str
    status: WorkflowRunStatus  # type: ignore[valid-type]
    stage: str
    progress: float = strawberry.field(description="Fraction of steps done, 0..1.")
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    recorded_steps: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field
    def steps(self) -> list[WorkflowStep]:
        # Built only when asked for: a page of documents' lastRun usually is not.
        return [
            WorkflowStep(
                name=s["name"], status=StepStatus(s["status"]), done=s["done"], total=s["total"]
            )
            for s in self.recorded_steps
        ]

    @classmethod
    def from_row(cls, run: RunRow) -> WorkflowRun:
        """The run as last recorded; a run with no event yet is queued (no worker took it)."""
        if run.status is None:
            return cls.queued(run)
        return cls(
            id=run.id,
            kind=run.kind,
            status=RunStatus(run.status),
            stage=run.stage or "queued",
            progress=run.progress,
            recorded_steps=run.steps,
            started_at=run.started_at,
            finished_at=run.finished_at,
            error=run.error,
        )

    @classmethod
    def queued(cls, run: RunRow) -> WorkflowRun:
        return cls(
            id=run.id,
            kind=run.kind,
            status=RunStatus.RUNNING,
            stage="queued",
            progress=0.0,
            recorded_steps=[],
            started_at=run.created_at,
            finished_at=None,
            error=None,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WorkflowRun | None]:
        runs = await info.context.loaders.run.load_many(list(node_ids))
        return [cls.from_row(run) if run else None for run in runs]


async def load_run(info: Info, run_id: str) -> WorkflowRun | None:
    (run,) = await WorkflowRun.resolve_nodes(info=info, node_ids=[run_id])
    return run


@strawberry.type
class RunQueries:
    @strawberry.field(description="A workflow run the caller can see, by global id.")
    async def workflow_run(self, info: Info, id: strawberry.ID) -> WorkflowRun | None:
        run_id = parse_global_id(id, "WorkflowRun")
        return await load_run(info, run_id) if run_id else None


@strawberry.type
class CancelWorkflowRunSuccess:
    run: WorkflowRun


CancelWorkflowRunPayload = Annotated[
    CancelWorkflowRunSuccess | UserError, strawberry.union("CancelWorkflowRunPayload")
]


@strawberry.type
class RunMutations:
    @strawberry.mutation(description="Cancel a running workflow; its work is withdrawn.")
    async def cancel_workflow_run(self, info: Info, id: strawberry.ID) -> CancelWorkflowRunPayload:
        run_id = parse_global_id(id, "WorkflowRun")
        if run_id is None:
            return user_error(resolve.NOT_FOUND_RUN)
        result = await resolve.cancel_run(info.context, run_id)
        if isinstance(result, Refusal):
            return user_error(result)
        run = await load_run(info, result.id)
        assert run is not None
        return CancelWorkflowRunSuccess(run=run)


@strawberry.type(description="One step of a run's progress, in the order the run recorded it.")
class WorkflowRunEvent:
    seq: int = strawberry.field(description="1, 2, 3 ... per run, without gaps.")
    run: WorkflowRun = strawberry.field(description="The run as recorded with this event.")
    stage: str
    status: WorkflowRunStatus  # type: ignore[valid-type]
    progress: float = strawberry.field(description="Fraction of the run done, 0..1.")
    message: str
    at: datetime


@strawberry.type
class RunSubscriptions:
    @strawberry.subscription(
        description="A run's events in order, from the one after `after` (0: from the start), "
        "ending after its last (COMPLETED, FAILED or CANCELED); a finished run replays them."
    )
    async def workflow_run(
        self, info: Info, id: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[WorkflowRunEvent, None]:
        ctx = info.context
        run_id = parse_global_id(id, "WorkflowRun")
        run = await ctx.loaders.run.load(run_id) if run_id else None
        if run is None:
            raise NotFoundError("run not found")
        async for event, snapshot in ctx.live.events(run, ctx.user_id, max(after, 0)):
            yield WorkflowRunEvent(
                seq=event.seq,
                run=WorkflowRun.from_row(snapshot),
                stage=event.stage,
                status=RunStatus(event.status),
                progress=event.progress,
                message=event.message,
                at=event.at,
            )
