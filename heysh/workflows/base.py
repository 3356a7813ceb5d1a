"""What every heysh workflow shares: its progress, the `progress` query, the run's frame.

Deterministic only. A subclass decorated with ``@workflow.defn`` declares its own ``@workflow.run``
(the SDK requires it on the class itself), which calls :meth:`RunWorkflow._run`; the query is
inherited (``_Definition`` collects members with ``inspect.getmembers``, base classes included).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from heysh.workflows.common import now, readable_failure
    from heysh.workflows.progress import RunOutput, RunProgress
    from heysh.workflows.publishing import RunPublisher

RequestT = TypeVar("RequestT")


class RunWorkflow(Generic[RequestT]):
    """Plans the run's steps, publishes its events, and on an activity failure or a cancel lets
    the subclass compensate before the run records why it ended."""

    kind: ClassVar[str]  # RunProgress.kind, e.g. "PROCESS_DOCUMENT"
    steps: ClassVar[list[str]]
    canceled: ClassVar[str] = "canceled"  # the reason a canceled run gives

    def __init__(self) -> None:
        self._progress: RunProgress | None = None
        # Counts the run returns in RunOutput.summary, also those gathered before a failure.
        self._summary: dict[str, int] = {}

    @workflow.query(name="progress")
    def progress(self) -> RunProgress | None:
        return self._progress

    async def _run(self, request: RequestT) -> RunOutput:
        # The order here (plan, publisher, steps, compensation, close) is what recorded
        # histories replay against: keep it.
        progress = self._progress = RunProgress.planned(self.kind, self.steps, now())
        publisher = RunPublisher(progress)
        try:
            await self._work(request, progress)
            progress.complete(now())
        except (ActivityError, asyncio.CancelledError) as err:
            canceled = is_cancelled_exception(err)
            reason = self.canceled if canceled else readable_failure(progress.stage, err)
            reason = await self._compensate(request, reason, err)
            progress.fail(reason, now(), canceled=canceled)
        await publisher.close()
        return RunOutput(progress.status, progress, self._summary)

    async def _work(self, request: RequestT, progress: RunProgress) -> None:
        """The run's work, beginning and finishing each of ``steps`` on ``progress``."""
        raise NotImplementedError

    async def _compensate(self, request: RequestT, reason: str, err: BaseException) -> str:
        """Undo or record what the failed or canceled run leaves; returns the reason it gives."""
        raise NotImplementedError
