"""CreateDomain: graph node → Weaviate tenant → ACTIVE, compensating on failure or cancel."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange
    from heysh.workflows.base import RunWorkflow
    from heysh.workflows.common import now, readable_failure, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["graph", "vectors", "activate"]
CANCELED = "creation canceled"


@dataclass
class CreateDomainInput:
    domain_id: str
    name: str


def workflow_id(domain_id: str) -> str:
    return f"create-domain-{domain_id}"


@workflow.defn(name="CreateDomain")
class CreateDomainWorkflow(RunWorkflow[CreateDomainInput]):
    kind = "CREATE_DOMAIN"
    steps = STEPS
    canceled = CANCELED

    @workflow.run
    async def run(self, request: CreateDomainInput) -> RunOutput:
        return await self._run(request)

    async def _work(self, request: CreateDomainInput, progress: RunProgress) -> None:
        ref = DomainRef(request.domain_id, request.name)
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

    async def _compensate(self, request: CreateDomainInput, reason: str, err: BaseException) -> str:
        """Undo in reverse order, best effort; returns the reason recorded on the domain."""
        ref = DomainRef(request.domain_id, request.name)
        leftovers: list[str] = []
        for undo in (DomainActivities.delete_vector_tenant, DomainActivities.delete_graph_domain):
            try:
                await run_activity(undo, ref)
            except ActivityError as failure:
                leftovers.append(readable_failure("cleanup", failure))
        if leftovers:
            reason = f"{reason} (cleanup incomplete: {'; '.join(leftovers)})"
        # Only from CREATING: a deleteDomain that canceled this run owns the domain now.
        await run_activity(
            DomainActivities.set_domain_status,
            DomainStatusChange(ref.domain_id, "FAILED", reason, expected=["CREATING"]),
        )
        return reason
