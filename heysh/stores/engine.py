"""The workflow service (Temporal) as the api uses it: start a run, stop one.

Its failures reach callers as StoreError, as every other store's do."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam

from heysh.errors import StoreError

log = logging.getLogger(__name__)

_Input = TypeVar("_Input")
UNAVAILABLE = "the workflow service is unavailable"


class WorkflowEngine:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        # Called with the workflow's run method for each run started here (the api's metrics).
        self.on_start: Callable[[Callable[..., Any]], object] | None = None

    async def start(
        self,
        workflow: MethodAsyncSingleParam[Any, _Input, Any],
        request: _Input,
        *,
        run_id: str,
        undo: Callable[[], Awaitable[object]],
    ) -> None:
        """Start ``run_id``; when the service cannot be reached, ``undo`` puts back the state
        change that recorded the run, so nothing waits for a run that never began."""
        try:
            await self._client.start_workflow(
                workflow, request, id=run_id, task_queue=self._task_queue
            )
        except WorkflowAlreadyStartedError:
            return  # a concurrent identical request started it: one run, as intended
        except RPCError as exc:
            log.warning("could not start a workflow: %s", exc.status)
            await undo()
            raise StoreError(UNAVAILABLE) from exc
        except RuntimeError as exc:
            # The api's client connects lazily; an unreachable server shows on first use as this.
            if "client connect" not in str(exc):
                raise
            log.warning("could not start a workflow: the workflow service is unreachable")
            await undo()
            raise StoreError(UNAVAILABLE) from exc
        if self.on_start is not None:
            self.on_start(workflow)

    async def cancel(self, run_id: str) -> bool:
        """Ask a running run to stop; False when it has already finished or is forgotten."""
        handle = self._client.get_workflow_handle(run_id)
        try:
            # Temporal accepts a cancel request for a closed run and ignores it; say so instead.
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return False
            await handle.cancel()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False
            log.warning("could not cancel %s: %s", run_id, exc.status)
            raise StoreError(UNAVAILABLE) from exc
        return True
