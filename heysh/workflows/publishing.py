"""Publishes a workflow's progress events to Postgres as they happen. Deterministic only.

Events are appended to ``RunProgress.events`` by the workflow's own code; a publisher task sends
the ones not yet sent, in order, through a local activity (no extra round trip to the Temporal
server, which matters against Temporal Cloud), and ``close`` waits until every event is sent.
The sequence numbers come from the workflow state, which a replay rebuilds identically, so a
retried or replayed send inserts nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from heysh.activities.runs import RecordRunEvents, RunActivities
    from heysh.workflows.progress import RunProgress

# Runs started before run events existed replay without them.
PATCH = "run-events"
# A store outage is ridden out (minutes), never the pipeline held up: the publisher runs beside it.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
RECORD_TIMEOUT = timedelta(minutes=10)


class RunPublisher:
    def __init__(self, progress: RunProgress) -> None:
        self._progress = progress
        self._sent = 0  # events recorded so far (their seq are 1..sent)
        self._failed = False
        self._task: asyncio.Task[None] | None = None
        if workflow.patched(PATCH):
            self._task = asyncio.create_task(self._publish())

    async def close(self) -> None:
        """Wait until every event so far is recorded (or recording gave up), then stop."""
        if self._task is None:
            return
        await workflow.wait_condition(
            lambda: self._failed or self._sent >= len(self._progress.events)
        )
        self._task.cancel()

    async def _publish(self) -> None:
        progress = self._progress
        while True:
            await workflow.wait_condition(lambda: len(progress.events) > self._sent)
            upto = len(progress.events)
            try:
                await workflow.execute_local_activity_method(
                    RunActivities.record_run_events,
                    RecordRunEvents(workflow.info().workflow_id, progress, self._sent + 1),
                    schedule_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                )
            except ActivityError:
                # Postgres was out for longer than RECORD_TIMEOUT: the run's own result still
                # holds every event; stop sending rather than hold the run open.
                workflow.logger.warning("run events could not be recorded; giving up")
                self._failed = True
                return
            self._sent = upto
