"""RebuildGraph: re-resolve a domain's entities across all its documents and rewrite the graph."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange
    from heysh.activities.graph import GraphActivities
    from heysh.workflows.base import RunWorkflow
    from heysh.workflows.common import now, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["resolve", "clear", "graph", "activate"]
LONG = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=20)


@dataclass
class RebuildGraphInput:
    domain_id: str


@workflow.defn(name="RebuildGraph")
class RebuildGraphWorkflow(RunWorkflow[RebuildGraphInput]):
    kind = "REBUILD_GRAPH"
    steps = STEPS

    @workflow.run
    async def run(self, request: RebuildGraphInput) -> RunOutput:
        return await self._run(request)

    async def _work(self, request: RebuildGraphInput, progress: RunProgress) -> None:
        ref = DomainRef(request.domain_id)
        summary = self._summary
        progress.begin("resolve", now())
        resolved = await run_activity(
            GraphActivities.resolve_domain, ref, limit=LONG, heartbeat=HEARTBEAT
        )
        summary["documents"] = resolved.documents
        progress.finish("resolve", now(), f"{resolved.documents} documents re-resolved")
        progress.begin("clear", now())
        await run_activity(GraphActivities.clear_domain_entities, ref, limit=LONG)
        progress.finish("clear", now(), "old entities removed")
        progress.begin("graph", now())
        written = await run_activity(
            GraphActivities.write_domain_graph, ref, limit=LONG, heartbeat=HEARTBEAT
        )
        summary["entities"] = written.entities
        summary["relationships"] = written.relationships
        progress.finish(
            "graph", now(), f"{written.entities} entities, {written.relationships} relationships"
        )
        progress.begin("activate", now())
        await run_activity(
            DomainActivities.set_domain_status,
            DomainStatusChange(request.domain_id, "ACTIVE", expected=["REBUILDING"]),
        )
        progress.finish("activate", now())

    async def _compensate(self, request: RebuildGraphInput, what: str, err: BaseException) -> str:
        reason = f"graph rebuild {what}; the graph may be incomplete: rebuild it again"
        # Only from REBUILDING: a deleteDomain that canceled this run owns the domain now.
        await run_activity(
            DomainActivities.set_domain_status,
            DomainStatusChange(request.domain_id, "ACTIVE", reason, expected=["REBUILDING"]),
        )
        return reason
