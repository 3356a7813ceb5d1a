"""CreateDomain: graph node → Weaviate tenant → ACTIVE, compensating on failure or cancel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange
    from heysh.workflows.common import now, readable_failure, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress
    from heysh.workflows.publishing import RunPublisher

STEPS = ["graph", "vectors", "activate"]
CANCELED = "creation canceled"


@dataclass
class CreateDomainInput:
    domain_id: str
    name: str


def workflow_id(domain_id: str) -> str:
    return f"create-domain-{domain_id}"


@workflow.defn(name="CreateDomain")
class CreateDomainWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

    @workflow.run
    async def run(self, request: CreateDomainInput) -> RunOutput:
        progress = self._progress = RunProgress.planned("CREATE_DOMAIN", STEPS, now())
        publisher = RunPublisher(progress)
        ref = DomainRef(request.domain_id, request.name)
        try:
            progress.begin("graph", now())
            await run_activity(DomainActivities.create_graph_domain, ref)
            progress.finish("graph", now(), "domain node created in Neo4j")
            progress.begin("vectors", now())
            await run_activity(DomainActivities.create_vector_tenant, ref)
            progress.finish("vectors", now(), "domain tenant created in Weaviate")
            progress.begin("activate", now())
            await run_activity(
                DomainActivities.set_domain_status,
                DomainStatusChange(request.domain_id, "ACTIVE", expected=["CREATING"]),
            )
            progress.finish("activate", now(), "domain is active")
            progress.complete(now())
        except (ActivityError, asyncio.CancelledError) as err:
            canceled = is_cancelled_exception(err)
            reason = CANCELED if canceled else readable_failure(progress.stage, err)
            reason = await self._compensate(ref, reason)
            progress.fail(reason, now(), canceled=canceled)
        await publisher.close()
        return RunOutput(progress.status, progress)

    async def _compensate(self, ref: DomainRef, reason: str) -> str:
        """Undo in reverse order, best effort; returns the reason recorded on the domain."""
        leftovers: list[str] = []
        for undo in (DomainActivities.delete_vector_tenant, DomainActivities.delete_graph_domain):
            try:
                await run_activity(undo, ref)
            except ActivityError as err:
                leftovers.append(readable_failure("cleanup", err))
        if leftovers:
            reason = f"{reason} (cleanup incomplete: {'; '.join(leftovers)})"
        # Only from CREATING: a deleteDomain that canceled this run owns the domain now.
        await run_activity(
            DomainActivities.set_domain_status,
            DomainStatusChange(ref.domain_id, "FAILED", reason, expected=["CREATING"]),
        )
        return reason

    @workflow.query(name="progress")
    def progress(self) -> RunProgress | None:
        return self._progress
