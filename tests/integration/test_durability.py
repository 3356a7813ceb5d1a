"""Durability: a worker killed mid-run, large documents, failing extraction, domain deletion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.pipeline.embedding import OpenAIEmbedder
from heysh.pipeline.extraction import LlmExtractor
from heysh.services import Services
from heysh.worker import build_document_activities, build_worker
from tests.support.documents import (
    DOCUMENT,
    active_domain,
    add_document,
    fixture_text,
    raw_id,
    store_counts,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.openai_server import OpenAIServer, chat_handler
from tests.support.store_state import domain_nodes, domain_row, relationship_weights

pytestmark = pytest.mark.integration


def long_text(copies: int) -> str:
    parts = [fixture_text("curie.md"), fixture_text("einstein.md")]
    return "\n\n".join(f"## Part {i}\n\n{parts[i % 2]}" for i in range(copies))


def worker_process(stack: LocalStack, task_queue: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **stack.settings_env(),
        "HEYSH_ENV": "test",
        "HEYSH_TASK_QUEUE": task_queue,
        "HEYSH_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "heysh", "worker"], env=env)


@pytest.fixture
async def queue_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """An api whose workflows go to a queue no in-process worker polls."""
    own = settings.model_copy(update={"task_queue": f"kill-{uuid.uuid4().hex[:8]}"})
    async with gateway(own) as client:
        yield client


async def test_killed_worker_mid_run_is_replaced_and_counts_match_an_uninterrupted_run(
    api: GraphQLClient, queue_api: GraphQLClient, services: Services, stack: LocalStack
) -> None:
    text = long_text(40)
    reference_domain = await active_domain(api, "kim", "Reference run")
    reference = await add_document(api, "kim", reference_domain, "long", text)
    assert (await wait_document(api, "kim", reference["document"]["id"]))["status"] == "READY"

    domain = await active_domain(api, "kim", "Crash run")
    first = worker_process(stack, queue_api.settings.task_queue)
    try:
        added = await add_document(queue_api, "kim", domain, "long", text)
        document_id = added["document"]["id"]

        async def stage() -> Any:
            doc = (await queue_api.data(DOCUMENT, {"id": document_id}, user="kim"))["document"]
            return doc["lastRun"]["stage"]

        await eventually(
            stage, lambda s: s in ("embed", "index", "extract", "resolve", "graph"), within=120
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = worker_process(stack, queue_api.settings.task_queue)
    try:
        document = await wait_document(queue_api, "kim", document_id, within=240)
    finally:
        second.terminate()
        second.wait(20)
    assert document["status"] == "READY", document
    crashed, uninterrupted = (
        await store_counts(services, domain),
        await store_counts(services, reference_domain),
    )
    assert crashed == uninterrupted

    # The run's recorded events survived the crash: gapless, none twice, the same stages.
    crash_events = await services.runs.events(raw_id(document["lastRun"]["id"]), 0)
    reference_doc = await wait_document(api, "kim", reference["document"]["id"])
    reference_events = await services.runs.events(raw_id(reference_doc["lastRun"]["id"]), 0)
    assert [e.seq for e in crash_events] == list(range(1, len(crash_events) + 1))
    assert crash_events[-1].status == "COMPLETED"

    def stages(events: list[Any]) -> list[tuple[str, str, str]]:
        # Within-stage counts ("extract: 96 of 160") depend on which batch finished first.
        return [(e.stage, e.status, e.message) for e in events if " of " not in e.message]

    assert stages(crash_events) == stages(reference_events)


async def test_five_megabyte_document_completes_with_small_history_events(
    settings: Settings, services: Services
) -> None:
    # Embeddings come from the OpenAI embedder against a local OpenAI-compatible server, so the
    # test measures the pipeline's handling of size rather than MiniLM's CPU time.
    text = long_text(2000)
    while len(text.encode()) < 5 * 1024 * 1024:
        text += "\n\n" + text[: 1024 * 1024]
    queue = f"big-{uuid.uuid4().hex[:8]}"
    with OpenAIServer() as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=2)
        activities = build_document_activities(
            services, embedder=OpenAIEmbedder(client, dimensions=384)
        )
        async with (
            gateway(settings.model_copy(update={"task_queue": queue})) as api,
            build_worker(services, task_queue=queue, documents=activities),
        ):
            domain = await active_domain(api, "kim", "Big document")
            added = await add_document(api, "kim", domain, "five megabytes", text)
            assert added["__typename"] == "AddDocumentSuccess", added
            document = await wait_document(api, "kim", added["document"]["id"], within=900)
    assert document["status"] == "READY", document
    assert document["sizeBytes"] >= 5 * 1024 * 1024
    assert document["chunkCount"] > 5000
    document_id = raw_id(added["document"]["id"])
    assert (
        await services.vectors.count_document(raw_id(domain), document_id) == document["chunkCount"]
    )
    assert await services.graph.count_document_chunks(document_id) == document["chunkCount"]

    largest = 0
    history = services.temporal.get_workflow_handle(raw_id(added["run"]["id"]))
    async for event in history.fetch_history_events():
        largest = max(largest, event.ByteSize())
    assert largest < 64 * 1024, f"largest history event is {largest} bytes"


async def test_a_document_through_the_llm_extractor_becomes_the_graph_it_described(
    settings: Settings, services: Services
) -> None:
    reply = json.dumps(
        {
            "entities": [
                {"name": "Marie Curie", "type": "PERSON", "description": "A physicist."},
                {"name": "Warsaw", "type": "LOCATION", "description": None},
            ],
            "relations": [{"source": "Marie Curie", "target": "Warsaw", "type": "BORN_IN"}],
        }
    )
    queue = f"llm-{uuid.uuid4().hex[:8]}"
    with OpenAIServer() as server:
        server.route("POST", "/v1/chat/completions", chat_handler(lambda request: reply))
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        activities = build_document_activities(
            services, extractor=LlmExtractor(client, "local-model")
        )
        async with (
            gateway(settings.model_copy(update={"task_queue": queue})) as api,
            build_worker(services, task_queue=queue, documents=activities),
        ):
            domain = await active_domain(api, "kim", "LLM success")
            added = await add_document(api, "kim", domain, "curie", fixture_text("curie.md"))
            document = await wait_document(api, "kim", added["document"]["id"])
        chat_calls = len(server.requests_to("/v1/chat/completions"))
    assert document["status"] == "READY", document
    assert (document["entityCount"], document["relationshipCount"]) == (2, 1)
    assert chat_calls == document["chunkCount"]  # one request per chunk, none repeated
    weights = await relationship_weights(services, raw_id(domain))
    assert list(weights.values()) == [document["chunkCount"]]  # every chunk stated it


async def test_malformed_llm_replies_are_retried_then_fail_the_run_clearly(
    settings: Settings, services: Services
) -> None:
    queue = f"llm-{uuid.uuid4().hex[:8]}"
    with OpenAIServer() as server:
        server.route(
            "POST", "/v1/chat/completions", chat_handler(lambda request: "this is not json {")
        )
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        activities = build_document_activities(
            services, extractor=LlmExtractor(client, "local-model")
        )
        async with (
            gateway(settings.model_copy(update={"task_queue": queue})) as api,
            build_worker(services, task_queue=queue, documents=activities),
        ):
            domain = await active_domain(api, "kim", "LLM failure")
            added = await add_document(api, "kim", domain, "to fail", fixture_text("einstein.md"))
            document = await wait_document(api, "kim", added["document"]["id"])
        chat_calls = len(server.requests_to("/v1/chat/completions"))
    assert document["status"] == "FAILED"
    assert "extract step failed" in document["error"]
    assert document["lastRun"]["status"] == "FAILED"
    assert chat_calls >= 2, "the malformed reply was not retried"
    counts = await store_counts(services, domain)
    assert (counts["chunks"], counts["entities"], counts["vectors"]) == (0, 0, 0)


async def test_delete_domain_removes_everything_in_all_three_stores(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "kim", "Doomed domain")
    added = await add_document(api, "kim", domain, "curie", fixture_text("curie.md"))
    await wait_document(api, "kim", added["document"]["id"])
    refused = await api.data(
        "mutation($id: ID!) { deleteDomain(id: $id) { __typename ... on UserError { code } } }",
        {"id": domain},
        user="someone-else",
    )
    assert refused["deleteDomain"] == {"__typename": "UserError", "code": "NOT_FOUND"}

    result = await api.data(
        "mutation($id: ID!) { deleteDomain(id: $id) { __typename } }", {"id": domain}, user="kim"
    )
    assert result["deleteDomain"]["__typename"] == "DeleteDomainSuccess"

    async def visible() -> Any:
        return (
            await api.data("query($id: ID!) { domain(id: $id) { id } }", {"id": domain}, user="kim")
        )["domain"]

    await eventually(visible, lambda d: d is None)
    raw = raw_id(domain)
    await eventually(lambda: domain_nodes(services, raw), lambda n: n == 0)
    counts = await services.graph.domain_counts(raw)
    assert (counts.documents, counts.chunks, counts.entities) == (0, 0, 0)
    assert not await services.vectors.tenant_exists(raw)
    assert await domain_row(services, uuid.UUID(raw)) is None
    assert await services.documents.get(uuid.UUID(raw_id(added["document"]["id"]))) is None
