"""DeleteDocument: measure the impact, withdraw vectors and graph contributions, drop metadata."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from heysh.activities.documents import DocumentActivities, DocumentRef, DocumentStatusChange
    from heysh.workflows.common import now, readable_failure, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress
    from heysh.workflows.publishing import RunPublisher

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
class DeleteDocumentWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

    @workflow.query(name="progress")
    def progress(self) -> RunProgress | None:
        return self._progress

    @workflow.run
    async def run(self, request: DeleteDocumentInput) -> RunOutput:
        progress = self._progress = RunProgress.planned("DELETE_DOCUMENT", STEPS, now())
        publisher = RunPublisher(progress)
        ref = DocumentRef(request.document_id, request.domain_id)
        summary: dict[str, int] = {}
        try:
            progress.begin("impact", now())
            impact = await run_activity(DocumentActivities.document_impact, ref, limit=IMPACT)
            summary = {k: v for k, v in dataclasses.asdict(impact).items() if isinstance(v, int)}
            progress.finish("impact", now())
            progress.begin("withdraw", now())
            await run_activity(
                DocumentActivities.purge_document, ref, limit=LONG, heartbeat=HEARTBEAT
            )
            progress.finish("withdraw", now(), "vectors, chunks, mentions and orphans removed")
            progress.begin("metadata", now())
            await run_activity(DocumentActivities.delete_document_metadata, ref)
            progress.finish("metadata", now())
            progress.complete(now())
        except (ActivityError, asyncio.CancelledError) as err:
            canceled = is_cancelled_exception(err)
            reason = CANCELED if canceled else readable_failure(progress.stage, err)
            await run_activity(
                DocumentActivities.set_document_status,
                DocumentStatusChange(request.document_id, "FAILED", reason, expected=["DELETING"]),
            )
            progress.fail(reason, now(), canceled=canceled)
        await publisher.close()
        return RunOutput(progress.status, progress, summary)
