"""DeleteDomain: stop the domain's other runs, then remove everything in all three stores."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import (
        DomainActivities,
        DomainRef,
        DomainStatusChange,
        StopRuns,
    )
    from heysh.workflows.common import now, readable_failure, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress
    from heysh.workflows.publishing import RunPublisher

STEPS = ["stop", "vectors", "graph", "metadata"]
LONG = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=20)
CANCELED = "deletion canceled part-way; delete the domain again to finish"


@dataclass
class DeleteDomainInput:
    domain_id: str


@workflow.defn(name="DeleteDomain")
class DeleteDomainWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

    @workflow.query(name="progress")
    def progress(self) -> RunProgress | None:
        return self._progress

    @workflow.run
    async def run(self, request: DeleteDomainInput) -> RunOutput:
        progress = self._progress = RunProgress.planned("DELETE_DOMAIN", STEPS, now())
        publisher = RunPublisher(progress)
        ref = DomainRef(request.domain_id)
        try:
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
            progress.complete(now())
        except (ActivityError, asyncio.CancelledError) as err:
            canceled = is_cancelled_exception(err)
            reason = CANCELED if canceled else readable_failure(progress.stage, err)
            await run_activity(
                DomainActivities.set_domain_status,
                DomainStatusChange(request.domain_id, "FAILED", reason, expected=["DELETING"]),
            )
            progress.fail(reason, now(), canceled=canceled)
        await publisher.close()
        return RunOutput(progress.status, progress)
