"""DeleteDomain: stop the domain's other runs, then remove everything in all three stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import (
        DomainActivities,
        DomainRef,
        DomainStatusChange,
        StopRuns,
    )
    from heysh.workflows.base import RunWorkflow
    from heysh.workflows.common import now, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["stop", "vectors", "graph", "metadata"]
LONG = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=20)
CANCELED = "deletion canceled part-way; delete the domain again to finish"


@dataclass
class DeleteDomainInput:
    domain_id: str


@workflow.defn(name="DeleteDomain")
class DeleteDomainWorkflow(RunWorkflow[DeleteDomainInput]):
    kind = "DELETE_DOMAIN"
    steps = STEPS
    canceled = CANCELED

    @workflow.run
    async def run(self, request: DeleteDomainInput) -> RunOutput:
        return await self._run(request)

    async def _work(self, request: DeleteDomainInput, progress: RunProgress) -> None:
        ref = DomainRef(request.domain_id)
        progress.begin("stop", now())
        stopped = await run_activity(
            DomainActivities.stop_domain_runs,
            StopRuns(request.domain_id, workflow.info().workflow_id),
            limit=LONG,
            heartbeat=HEARTBEAT,
        )
        progress.finish("stop", now(), f"{stopped.stopped} other run(s) stopped")
        progress.begin("vectors", now())
        await run_activity(DomainActivities.delete_vector_tenant, ref, limit=LONG)
        progress.finish("vectors", now(), "Weaviate tenant deleted")
        progress.begin("graph", now())
        await run_activity(DomainActivities.delete_graph_domain, ref, limit=LONG)
        progress.finish("graph", now(), "graph nodes deleted")
        progress.begin("metadata", now())
        await run_activity(DomainActivities.delete_domain_metadata, ref)
        progress.finish("metadata", now())

    async def _compensate(self, request: DeleteDomainInput, reason: str, err: BaseException) -> str:
        await run_activity(
            DomainActivities.set_domain_status,
            DomainStatusChange(request.domain_id, "FAILED", reason, expected=["DELETING"]),
        )
        return reason
