"""Durability: a worker killed mid-run, large documents, failing extraction, domain deletion."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from temporalio.worker import Worker

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.local.users import user_id_for
from heysh.pipeline.embedding import OpenAIEmbedder
from heysh.pipeline.extraction import LlmExtractor
from heysh.services import Services
from heysh.worker import WORKFLOWS, build_document_activities
from heysh.workflows.process_document import ProcessDocumentInput, ProcessDocumentWorkflow
from heysh.workflows.progress import RunOutput, RunStatus
from tests.integration.test_documents import store_counts
from tests.support.documents import (
    DOCUMENT,
    active_domain,
    add_document,
    fixture_text,
    raw_id,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.openai_server import OpenAIServer, chat_handler

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


async def test_five_megabyte_document_completes_with_small_history_events(
    api: GraphQLClient, services: Services
) -> None:
    # Embeddings come from the OpenAI embedder against a local OpenAI-compatible server, so the
    # test measures the pipeline's handling of size rather than MiniLM's CPU time.
    domain = await active_domain(api, "kim", "Big document")
    text = long_text(2000)
    while len(text.encode()) < 5 * 1024 * 1024:
        text += "\n\n" + text[: 1024 * 1024]
    content_hash = hashlib.sha256(text.encode()).hexdigest()
    document_id = uuid.uuid4()
    run_id = f"big-{uuid.uuid4()}"
    _, first_run = await services.documents.add_document(
        document_id,
        uuid.UUID(raw_id(domain)),
        "five megabytes",
        text,
        content_hash,
        uuid.UUID(user_id_for("kim")),
        run_id,
    )
    assert first_run is not None

    with OpenAIServer() as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=2)
        activities = build_document_activities(
            services, embedder=OpenAIEmbedder(client, dimensions=384)
        )
        queue = f"big-{uuid.uuid4().hex[:8]}"
        async with Worker(
            services.temporal,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities.all(),
            max_concurrent_activities=8,
        ):
            output: RunOutput = await services.temporal.execute_workflow(
                ProcessDocumentWorkflow.run,
                ProcessDocumentInput(str(document_id), raw_id(domain), "five megabytes"),
                id=run_id,
                task_queue=queue,
            )
    assert output.status is RunStatus.COMPLETED, output.progress.error
    stored = await services.documents.get(document_id)
    assert stored is not None
    assert stored.status == "READY"
    assert stored.size_bytes >= 5 * 1024 * 1024
    assert stored.chunk_count == output.summary["chunks"] > 5000
    assert (
        await services.vectors.count_document(raw_id(domain), str(document_id))
        == stored.chunk_count
    )
    assert await services.graph.count_document_chunks(str(document_id)) == stored.chunk_count

    largest = 0
    async for event in services.temporal.get_workflow_handle(run_id).fetch_history_events():
        largest = max(largest, event.ByteSize())
    assert largest < 64 * 1024, f"largest history event is {largest} bytes"


async def test_malformed_llm_replies_are_retried_then_fail_the_run_clearly(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "kim", "LLM failure")
    text = fixture_text("einstein.md")
    added = await add_document(api, "kim", domain, "to fail", text)
    await wait_document(api, "kim", added["document"]["id"])
    document_id = raw_id(added["document"]["id"])

    with OpenAIServer() as server:
        server.route(
            "POST", "/v1/chat/completions", chat_handler(lambda request: "this is not json {")
        )
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        activities = build_document_activities(
            services, extractor=LlmExtractor(client, "local-model")
        )
        queue = f"llm-{uuid.uuid4().hex[:8]}"
        async with Worker(
            services.temporal, task_queue=queue, workflows=WORKFLOWS, activities=activities.all()
        ):
            output: RunOutput = await services.temporal.execute_workflow(
                ProcessDocumentWorkflow.run,
                ProcessDocumentInput(document_id, raw_id(domain), "to fail"),
                id=f"llm-failure-{uuid.uuid4()}",
                task_queue=queue,
            )
        chat_calls = len(server.requests_to("/v1/chat/completions"))
    assert output.status is RunStatus.FAILED
    assert output.progress.error is not None
    assert "extract step failed" in output.progress.error
    assert chat_calls >= 2, "the malformed reply was not retried"
    row = await services.documents.get(uuid.UUID(document_id))
    assert row is not None
    assert row.status == "FAILED"
    assert row.error == output.progress.error
    assert await services.vectors.count_document(raw_id(domain), document_id) == 0


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
    await eventually(lambda: services.graph.count_domain_nodes(raw), lambda n: n == 0)
    counts = await services.graph.domain_counts(raw)
    assert (counts.documents, counts.chunks, counts.entities) == (0, 0, 0)
    assert not await services.vectors.tenant_exists(raw)
    assert await services.postgres.get_domain(uuid.UUID(raw)) is None
    assert await services.documents.get(uuid.UUID(raw_id(added["document"]["id"]))) is None
