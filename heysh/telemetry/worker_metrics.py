"""The worker's metrics: temporalio's Prometheus exporter, and heysh's pipeline metrics on it.

With `HEYSH_WORKER_METRICS_ADDRESS` (IP:port) set, the worker's Temporal client runs on a
runtime whose exporter serves `http://<address>/metrics`: the SDK's own metrics (`temporal_*`:
task slots, poll and schedule-to-start latencies, activity and workflow outcomes) and those
recorded below through `activity.metric_meter()`, so there is one endpoint. Unset, the worker
runs on temporalio's default runtime, whose meter is a no-op, and no interceptor is added.

Names as the exporter prints them (counters get `_total`, durations are seconds with `_seconds`);
every series carries `activity_type`, `namespace`, `task_queue` and the exporter's
`service_name="temporal-core-sdk"`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from heysh.config import ConfigError, Settings
from heysh.telemetry.logs import temporal_core_logging

# Names as created; the exporter adds the unit (heysh_pipeline_stage_duration_seconds) or _total.
STAGE_DURATION = "heysh_pipeline_stage_duration"
CHUNKS_EMBEDDED = "heysh_pipeline_chunks_embedded"
EMBEDDING_TOKENS = "heysh_pipeline_embedding_tokens"
ENTITIES_WRITTEN = "heysh_pipeline_entities_written"
RELATIONS_WRITTEN = "heysh_pipeline_relations_written"
# Seconds: an activity takes from milliseconds (a status change) to minutes (embedding a batch of
# a large document on CPU); the exporter's default buckets stop at 10 s.
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def worker_runtime(settings: Settings) -> Runtime | None:
    """A runtime serving Prometheus metrics on the configured address, or None (the default
    runtime, no metrics). Raises ConfigError when the address cannot be bound."""
    address = settings.worker_metrics_address
    if address is None:
        return None
    exporter = PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={STAGE_DURATION: STAGE_BUCKETS},
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=exporter, logging=temporal_core_logging()))
    except ValueError as exc:  # "Failed starting Prometheus exporter: Address already in use"
        raise ConfigError(f"HEYSH_WORKER_METRICS_ADDRESS={address}: {exc}") from None


def activity_metrics_interceptors(settings: Settings) -> list[Interceptor]:
    return [] if settings.worker_metrics_address is None else [StageTimer()]


class StageTimer(Interceptor):
    """Times every activity attempt: heysh_pipeline_stage_duration_seconds{activity_type,
    workflow_type, outcome}, outcome ok, error or canceled."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimeActivity(next)


class _TimeActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await super().execute_activity(input)
            outcome = "ok"
            return result
        except asyncio.CancelledError:
            outcome = "canceled"
            raise
        finally:
            activity.metric_meter().create_histogram_float(
                STAGE_DURATION, "Activity attempts, by activity, workflow and outcome.", "seconds"
            ).record(
                time.perf_counter() - started,
                {"outcome": outcome, "workflow_type": activity.info().workflow_type or ""},
            )


def count_embedded(chunks: int, tokens: int) -> None:
    """Chunks embedded and their tokens; rate() of the latter is tokens per second."""
    meter = activity.metric_meter()
    meter.create_counter(CHUNKS_EMBEDDED, "Chunks embedded.").add(chunks)
    meter.create_counter(EMBEDDING_TOKENS, "Tokens of the chunks embedded.").add(tokens)


def count_graph_writes(*, entities: int = 0, relations: int = 0) -> None:
    """Entities and relations merged into the graph (a document's, or a rebuild's)."""
    meter = activity.metric_meter()
    meter.create_counter(ENTITIES_WRITTEN, "Entities merged into the graph.").add(entities)
    meter.create_counter(RELATIONS_WRITTEN, "Relations merged into the graph.").add(relations)
