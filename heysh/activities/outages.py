"""An activity interceptor: a store outage leaves an activity as one short, retryable error.

Driver errors name hosts, ports and server internals, and can be large; recorded in workflow
history they would reach `Document.error`. The interceptor logs the driver's error and raises
what `heysh.stores.outages` says instead, without the cause chain.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from heysh.stores.outages import store_outage

STORE_UNAVAILABLE = "StoreUnavailable"


class StoreOutageInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ReportOutages(next)


class _ReportOutages(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError:
            raise
        except Exception as exc:
            outage = store_outage(exc)
            if outage is None:
                raise
            activity.logger.warning("%s: %r", outage, exc)
            raise ApplicationError(str(outage), type=STORE_UNAVAILABLE) from None
