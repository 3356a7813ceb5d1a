"""DeleteDocument: measure the impact, withdraw vectors and graph contributions, drop metadata."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from heysh.activities.documents import DocumentActivities, DocumentRef, DocumentStatusChange
    from heysh.workflows.base import RunWorkflow
    from heysh.workflows.common import now, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["impact", "withdraw", "metadata"]
HEARTBEAT = timedelta(seconds=20)
LONG = timedelta(minutes=30)
IMPACT = timedelta(minutes=2)  # a few bounded queries
CANCELED = "deletion canceled part-way; delete it again, or reprocess it to rebuild it"


@dataclass
class DeleteDocumentInput:
    document_id: str
    domain_id: str


@workflow.defn(name="DeleteDocument")
class DeleteDocumentWorkflow(RunWorkflow[DeleteDocumentInput]):
    kind = "DELETE_DOCUMENT"
    steps = STEPS
    canceled = CANCELED

    @workflow.run
    async def run(self, request: DeleteDocumentInput) -> RunOutput:
        return await self._run(request)

    async def _work(self, request: DeleteDocumentInput, progress: RunProgress) -> None:
        ref = DocumentRef(request.document_id, request.domain_id)
        progress.begin("impact", now())
        impact = await run_activity(DocumentActivities.document_impact, ref, limit=IMPACT)
        counts = dataclasses.asdict(impact).items()
        self._summary = {k: v for k, v in counts if isinstance(v, int)}
        progress.finish("impact", now())
        progress.begin("withdraw", now())
        await run_activity(DocumentActivities.purge_document, ref, limit=LONG, heartbeat=HEARTBEAT)
        progress.finish("withdraw", now(), "vectors, chunks, mentions and orphans removed")
        progress.begin("metadata", now())
        await run_activity(DocumentActivities.delete_document_metadata, ref)
        progress.finish("metadata", now())

    async def _compensate(
        self, request: DeleteDocumentInput, reason: str, err: BaseException
    ) -> str:
        await run_activity(
            DocumentActivities.set_document_status,
            DocumentStatusChange(request.document_id, "FAILED", reason, expected=["DELETING"]),
        )
        return reason
