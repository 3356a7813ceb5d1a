"""CreateDomain: graph node → Weaviate tenant → ACTIVE, compensating on failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["graph", "vectors", "activate"]

STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
STEP_TIMEOUT = timedelta(seconds=60)


@dataclass
class CreateDomainInput:
    domain_id: str
    name: str


def workflow_id(domain_id: str) -> str:
    return f"create-domain-{domain_id}"


def readable_failure(stage: str, err: BaseException) -> str:
    cause: BaseException | None = err
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
    return f"{stage} step failed: {detail}"


@workflow.defn(name="CreateDomain")
class CreateDomainWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

    @workflow.run
    async def run(self, request: CreateDomainInput) -> RunOutput:
        progress = self._progress = RunProgress.planned("CREATE_DOMAIN", STEPS, _now())
        ref = DomainRef(request.domain_id, request.name)
        try:
            progress.begin("graph", _now())
            await _step(DomainActivities.create_graph_domain, ref)
            progress.finish("graph", _now(), "domain node created in Neo4j")
            progress.begin("vectors", _now())
            await _step(DomainActivities.create_vector_tenant, ref)
            progress.finish("vectors", _now(), "domain tenant created in Weaviate")
            progress.begin("activate", _now())
            await _step(
                DomainActivities.set_domain_status, DomainStatusChange(request.domain_id, "ACTIVE")
            )
            progress.finish("activate", _now(), "domain is active")
            progress.complete(_now())
        except ActivityError as err:
            reason = await self._compensate(ref, readable_failure(progress.stage, err))
            progress.fail(reason, _now())
        return RunOutput(progress.status, progress)

    async def _compensate(self, ref: DomainRef, reason: str) -> str:
        """Undo in reverse order, best effort; returns the reason recorded on the domain."""
        leftovers: list[str] = []
        for undo in (DomainActivities.delete_vector_tenant, DomainActivities.delete_graph_domain):
            try:
                await _step(undo, ref)
            except ActivityError as err:
                leftovers.append(readable_failure("cleanup", err))
        if leftovers:
            reason = f"{reason} (cleanup incomplete: {'; '.join(leftovers)})"
        await _step(
            DomainActivities.set_domain_status,
            DomainStatusChange(ref.domain_id, "FAILED", reason),
        )
        return reason

    @workflow.query(name="progress")
    def progress(self) -> RunProgress | None:
        return self._progress


async def _step(activity_method: object, arg: object) -> object:
    return await workflow.execute_activity_method(
        activity_method,  # type: ignore[call-overload]
        arg,
        start_to_close_timeout=STEP_TIMEOUT,
        retry_policy=STORE_RETRY,
    )


def _now() -> str:
    return workflow.now().isoformat()
