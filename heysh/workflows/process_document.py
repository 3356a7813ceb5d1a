"""ProcessDocument: chunk → embed → index → extract → resolve → graph → READY.

Only ids, ranges and counts cross the workflow boundary; the text and every intermediate result
stay in the stores, so history stays small for any document size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from heysh.activities.documents import (
        SUPERSEDED,
        ChunkRange,
        DocumentActivities,
        DocumentRef,
        DocumentStatusChange,
    )
    from heysh.workflows.base import RunWorkflow
    from heysh.workflows.common import failure_type, now, readable_failure, run_activity
    from heysh.workflows.progress import RunOutput, RunProgress

STEPS = ["chunk", "embed", "index", "extract", "resolve", "graph"]
# The statuses this run holds the document in; its final write applies only from one of them.
HELD = ["PENDING", "PROCESSING"]
HEARTBEAT = timedelta(seconds=20)
LONG = timedelta(minutes=30)


@dataclass
class ProcessDocumentInput:
    document_id: str
    domain_id: str
    title: str
    embed_batch: int = 64
    index_batch: int = 256
    extract_batch: int = 32
    extract_concurrency: int = 4


def workflow_id(domain_id: str, content_hash: str, suffix: str) -> str:
    """Names the content it processes; the suffix makes each run (first, re-add, reprocess) new."""
    return f"process-document-{domain_id}-{content_hash[:40]}-{suffix}"


@workflow.defn(name="ProcessDocument")
class ProcessDocumentWorkflow(RunWorkflow[ProcessDocumentInput]):
    kind = "PROCESS_DOCUMENT"
    steps = STEPS

    @workflow.run
    async def run(self, request: ProcessDocumentInput) -> RunOutput:
        return await self._run(request)

    async def _work(self, request: ProcessDocumentInput, progress: RunProgress) -> None:
        ref = DocumentRef(request.document_id, request.domain_id, request.title)
        summary = self._summary
        progress.begin("chunk", now())
        await run_activity(DocumentActivities.begin_document, ref, limit=LONG, heartbeat=HEARTBEAT)
        chunked = await run_activity(
            DocumentActivities.chunk_document, ref, limit=LONG, heartbeat=HEARTBEAT
        )
        total = summary["chunks"] = chunked.chunks
        summary["tokens"] = chunked.tokens
        progress.finish("chunk", now(), f"{total} chunks")

        await self._batches(
            "embed", DocumentActivities.embed_chunks, request, total, request.embed_batch, 1
        )
        await self._batches(
            "index", DocumentActivities.index_chunks, request, total, request.index_batch, 1
        )
        await self._batches(
            "extract",
            DocumentActivities.extract_chunks,
            request,
            total,
            request.extract_batch,
            request.extract_concurrency,
        )

        progress.begin("resolve", now())
        resolved = await run_activity(
            DocumentActivities.resolve_document, ref, limit=LONG, heartbeat=HEARTBEAT
        )
        progress.finish(
            "resolve",
            now(),
            f"{resolved.entities} entities, {resolved.relationships} relationships",
        )
        progress.begin("graph", now())
        written = await run_activity(
            DocumentActivities.write_graph, ref, limit=LONG, heartbeat=HEARTBEAT
        )
        summary["entities"] = written.entities
        summary["relationships"] = written.relationships
        progress.finish("graph", now(), "knowledge graph written")
        await run_activity(
            DocumentActivities.set_document_status,
            DocumentStatusChange(
                request.document_id,
                "READY",
                chunks=total,
                entities=written.entities,
                relationships=written.relationships,
                expected=HELD,
            ),
        )

    async def _compensate(
        self, request: ProcessDocumentInput, reason: str, err: BaseException
    ) -> str:
        # SUPERSEDED: the document was deleted or its domain is going; nothing of ours to withdraw.
        if failure_type(err) != SUPERSEDED:
            ref = DocumentRef(request.document_id, request.domain_id, request.title)
            await self._withdraw(ref, reason)
        return reason

    async def _batches(
        self,
        stage: str,
        activity_method: object,
        request: ProcessDocumentInput,
        total: int,
        size: int,
        concurrency: int,
    ) -> None:
        progress = self._progress
        assert progress is not None
        progress.begin(stage, now(), total)
        limit = asyncio.Semaphore(max(1, concurrency))

        async def one(start: int) -> None:
            async with limit:
                batch = ChunkRange(
                    request.document_id,
                    request.domain_id,
                    start,
                    min(start + size, total),
                    request.title,
                )
                outcome = await run_activity(
                    activity_method, batch, limit=LONG, heartbeat=HEARTBEAT
                )
                progress.advance(stage, outcome.processed, now())

        batches = [asyncio.create_task(one(start)) for start in range(0, total, max(1, size))]
        try:
            await asyncio.gather(*batches)
        except BaseException:
            # Stop every sibling and wait until each has stopped writing before anyone withdraws:
            # a batch still queued on the semaphore would otherwise start after the purge.
            for batch in batches:
                batch.cancel()
            await asyncio.gather(*batches, return_exceptions=True)
            raise
        progress.finish(stage, now(), f"{stage}: {total} chunks")

    async def _withdraw(self, ref: DocumentRef, reason: str) -> None:
        """Leave nothing half-written visible: withdraw derived data, then record the failure."""
        try:
            await run_activity(
                DocumentActivities.purge_document, ref, limit=LONG, heartbeat=HEARTBEAT
            )
        except ActivityError as err:
            reason = f"{reason} (cleanup incomplete: {readable_failure('cleanup', err)})"
        await run_activity(
            DocumentActivities.set_document_status,
            DocumentStatusChange(ref.document_id, "FAILED", reason, expected=HELD),
        )
