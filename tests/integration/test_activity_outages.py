"""A store outage inside an activity is recorded as one short error, never the driver's text."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from neo4j import AsyncGraphDatabase
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from heysh.activities.outages import StoreOutageInterceptor
from heysh.services import Services
from heysh.stores.graph import GraphStore
from heysh.workflows.common import readable_failure

pytestmark = pytest.mark.integration

CLOSED = "bolt://127.0.0.1:9"  # nothing listens on the discard port


@activity.defn(name="read_a_graph_that_is_down")
async def read_a_graph_that_is_down() -> None:
    driver = AsyncGraphDatabase.driver(CLOSED, max_transaction_retry_time=0)
    try:
        await GraphStore(driver).ping()
    finally:
        await driver.close()


@workflow.defn(name="ReadGraphThatIsDown", sandboxed=False)
class ReadGraphThatIsDown:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(
                read_a_graph_that_is_down,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            return readable_failure("graph", err)
        return "no failure"


async def test_an_outage_in_an_activity_is_recorded_without_driver_details(
    services: Services,
) -> None:
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    run_id = f"outage-{uuid.uuid4()}"
    async with Worker(
        services.temporal,
        task_queue=queue,
        workflows=[ReadGraphThatIsDown],
        activities=[read_a_graph_that_is_down],
        interceptors=[StoreOutageInterceptor()],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        reason = await services.temporal.execute_workflow(
            ReadGraphThatIsDown.run, id=run_id, task_queue=queue
        )
    assert (
        reason == "graph step failed: the graph store is temporarily unavailable; try again shortly"
    )
    failures = [
        event.activity_task_failed_event_attributes.failure
        async for event in services.temporal.get_workflow_handle(run_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert len(failures) == 1
    (failure,) = failures
    assert failure.application_failure_info.type == "StoreUnavailable"
    assert not failure.HasField("cause")  # the driver's error stays in the worker's log
    assert "127.0.0.1" not in str(failure)
