"""Prometheus metrics of the api and the worker after a real ingestion, scraped and parsed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from gql import gql
from gql.transport.exceptions import TransportQueryError
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from heysh.config import Settings
from heysh.services import Services, open_services
from heysh.telemetry.worker_metrics import worker_runtime
from heysh.worker import build_worker, prepare_stores
from tests.support.documents import active_domain, add_document, fixture_text, raw_id, wait_document
from tests.support.graphql import GraphQLClient, eventually
from tests.support.live_api import free_port, serve_api
from tests.support.subscriptions import RUN_EVENTS, ws_session

pytestmark = pytest.mark.integration

USER = "mira-metrics"
PIPELINE_STAGES = (
    "begin_document",
    "chunk_document",
    "embed_chunks",
    "index_chunks",
    "extract_chunks",
    "resolve_document",
    "write_graph",
)
BAD_SEARCH = """query BadSearch($domain: ID!) {
  search(domainId: $domain, query: "radium", limit: 0) { hits { score } } }"""
DOMAIN_EVENTS = "subscription($id: ID!) { domainEvents(domainId: $id) { seq kind } }"


@dataclass
class Scrape:
    samples: list[Sample]

    def value(self, name: str, **labels: str) -> float:
        """The sum over the samples of ``name`` carrying ``labels`` (0 when there are none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.samples}


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    families = text_string_to_metric_families(response.text)
    return Scrape([sample for family in families for sample in family.samples])


@dataclass
class Deployment:
    settings: Settings
    services: Services
    api: GraphQLClient
    graphql_url: str

    @property
    def api_metrics(self) -> str:
        return self.graphql_url.removesuffix("/graphql") + "/metrics"

    @property
    def worker_metrics(self) -> str:
        return f"http://{self.settings.worker_metrics_address}/metrics"


@asynccontextmanager
async def deployment(settings: Settings) -> AsyncIterator[Deployment]:
    """An api (uvicorn) and a worker on a task queue of their own, the worker's client on a
    runtime exporting Prometheus metrics: nothing else adds to what they count."""
    mine = settings.model_copy(
        update={
            "task_queue": f"heysh-metrics-{uuid.uuid4().hex[:8]}",
            "worker_metrics_address": f"127.0.0.1:{free_port()}",
        }
    )
    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            open_services(mine, runtime=worker_runtime(mine))
        )
        await prepare_stores(services)
        await stack.enter_async_context(build_worker(services))
        url = await stack.enter_async_context(serve_api(mine))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url.removesuffix("/graphql"), timeout=30)
        )
        yield Deployment(mine, services, GraphQLClient(http, mine), url)


async def test_api_and_worker_metrics_after_an_ingestion_count_what_happened(
    settings: Settings,
) -> None:
    async with deployment(settings) as d:
        domain = await active_domain(d.api, USER, "Measured")
        added = await add_document(d.api, USER, domain, "Curie", fixture_text("curie.md"))
        document = await wait_document(d.api, USER, added["document"]["id"])
        assert document["status"] == "READY", document
        chunks = await d.services.chunks.chunks(UUID(raw_id(document["id"])), 0, 10_000)
        assert len(chunks) == document["chunkCount"] > 0

        # Errors: one in an HTTP response, one refused request, one streamed over a WebSocket.
        refused = await d.api.execute(BAD_SEARCH, {"domain": domain}, user=USER)
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        not_json = await d.api.http.post(
            "/graphql", content=b"{", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 400

        async with ws_session(d.graphql_url, d.api.token(USER), "graphql-transport-ws") as ws:
            unknown_run = gql(RUN_EVENTS)
            unknown_run.variable_values = {"id": "process-document-none", "after": 0}
            with pytest.raises(TransportQueryError) as streamed:
                async for _ in ws.subscribe(unknown_run):
                    pass
            assert streamed.value.errors is not None
            assert streamed.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
            events = gql(DOMAIN_EVENTS)
            events.variable_values = {"id": domain}
            live = ws.subscribe(events)
            await anext(live)  # the subscription is live on the server while we scrape
            api = await scrape(d.api_metrics)
            assert api.value("heysh_websocket_connections") == 1
            assert api.value("heysh_graphql_subscriptions") == 1
            await live.aclose()

        async def closed() -> Scrape:
            return await scrape(d.api_metrics)

        after = await eventually(
            closed, lambda s: s.value("heysh_websocket_connections") == 0, within=10
        )
        assert after.value("heysh_graphql_subscriptions") == 0

        worker = await eventually(
            lambda: scrape(d.worker_metrics),
            lambda s: s.value("heysh_pipeline_relations_written_total") > 0,
            within=10,
        )

    # --- the api -------------------------------------------------------------------------------
    assert api.value("heysh_workflow_starts_total", kind="PROCESS_DOCUMENT") == 1
    assert api.value("heysh_workflow_starts_total", kind="CREATE_DOMAIN") == 1
    assert api.value("heysh_graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert api.value("heysh_graphql_errors_total", code="BAD_REQUEST") == 1
    assert api.value("heysh_graphql_errors_total", code="NOT_FOUND") == 1
    operation = "heysh_graphql_operation_duration_seconds_count"
    assert api.value(operation, operation="BadSearch", outcome="user_error") == 1
    assert api.value(operation, operation_type="mutation", operation="anonymous", outcome="ok") == 2
    assert api.value(operation, operation_type="query", outcome="ok") >= 2  # the status polls
    assert api.value(operation, operation_type="subscription") == 0  # lifetimes are no latency
    requests = "heysh_http_request_duration_seconds_count"
    assert api.value(requests, method="POST", route="/graphql", status="200") >= 5
    assert api.value(requests, method="POST", route="/graphql", status="400") == 1
    assert api.label_values(requests, "route") <= {"/graphql", "/metrics"}
    assert api.value("process_resident_memory_bytes") > 0

    # --- the worker: heysh's pipeline metrics ------------------------------------------------
    queue = {"task_queue": d.settings.task_queue}
    assert worker.value("heysh_pipeline_chunks_embedded_total", **queue) == len(chunks)
    tokens = sum(chunk.token_count for chunk in chunks)
    assert worker.value("heysh_pipeline_embedding_tokens_total", **queue) == tokens
    assert worker.value("heysh_pipeline_entities_written_total", **queue) == document["entityCount"]
    relations = worker.value("heysh_pipeline_relations_written_total", **queue)
    assert relations == document["relationshipCount"] > 0
    stage = "heysh_pipeline_stage_duration_seconds_count"
    for activity in PIPELINE_STAGES:
        timed = worker.value(stage, activity_type=activity, workflow_type="ProcessDocument")
        assert timed == worker.value(stage, activity_type=activity, outcome="ok") >= 1, activity
    assert worker.value("heysh_pipeline_stage_duration_seconds_sum", **queue) > 0
    # Buckets for stages of minutes, not the exporter's default (which stop at 10 s).
    assert "900" in worker.label_values("heysh_pipeline_stage_duration_seconds_bucket", "le")

    # --- the worker: temporalio's own metrics, as its exporter names them ---------------------
    assert worker.value("temporal_workflow_completed_total", workflow_type="ProcessDocument") == 1
    assert worker.value(
        "temporal_activity_execution_latency_seconds_count", activity_type="embed_chunks"
    ) == worker.value(stage, activity_type="embed_chunks")
    assert worker.value("temporal_activity_schedule_to_start_latency_seconds_count") > 0
    assert "temporal_worker_task_slots_available" in worker.names
