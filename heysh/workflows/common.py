"""Helpers shared by workflows: activity options and readable failures. Deterministic only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

# Long enough to ride out a store restart: Neo4j's and Postgres's clients wait ~30 s per attempt
# on their own, but a refused Weaviate REST call fails at once, so the waits between attempts
# (1+2+4+8+16+30 s, about a minute) are the whole budget; a Weaviate restart took 10-15 s here.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=7,
)


def now() -> str:
    return workflow.now().isoformat()


def failure_type(err: BaseException) -> str | None:
    """The ApplicationError type at the root of an activity failure, if any."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def readable_failure(stage: str, err: BaseException) -> str:
    cause: BaseException | None = err
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
    return f"{stage} step failed: {detail}"


async def run_activity(
    activity_method: Any,
    arg: object,
    *,
    limit: timedelta = timedelta(seconds=60),
    heartbeat: timedelta | None = None,
    retry: RetryPolicy = STORE_RETRY,
) -> Any:
    # WAIT_CANCELLATION_COMPLETED: a canceled run cleans up only after the activity has stopped
    # writing, so the cleanup cannot race a half-finished batch.
    return await workflow.execute_activity_method(
        activity_method,
        arg,
        start_to_close_timeout=limit,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
