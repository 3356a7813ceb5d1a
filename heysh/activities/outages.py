"""An activity interceptor: a store outage leaves an activity as one short, retryable error.

Driver errors name hosts, ports and server internals, and can be large; recorded in workflow
history they would reach `Document.error`. The interceptor logs the driver's error and raises
what `heysh.stores.outages` says instead, without the cause chain. Other driver errors whose
messages can quote values (`heysh.telemetry.errors.describe`) are raised by their codes, also
without the chain, so neither history nor the worker's log holds what they quoted.
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
from heysh.telemetry.errors import describe, safe_message, withholds_detail

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
            if outage is not None:
                activity.logger.warning("%s: %s", outage, describe(exc))
                raise ApplicationError(str(outage), type=STORE_UNAVAILABLE) from None
            if not withholds_detail(exc):
                raise
            # Any other driver error, by its code: its message can quote what the activity sent
            # (a DETAIL line with a row's values, a Neo4j property). Its frames stay, for the log.
            failure = ApplicationError(safe_message(exc), type=type(exc).__name__)
            raise failure.with_traceback(exc.__traceback__) from None
