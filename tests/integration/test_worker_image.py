"""The worker as Dockerfile.worker starts it: OpenAI embeddings, no MiniLM files anywhere."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from weaviate.classes.query import Filter

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.services import weaviate_client
from heysh.stores.vectors import tenant_name
from tests.support.documents import active_domain, add_document, fixture_text, raw_id, wait_document
from tests.support.graphql import gateway
from tests.support.images import image_config, run_image_command
from tests.support.openai_server import OpenAIServer

pytestmark = pytest.mark.integration

TEXT = "\n\n".join([fixture_text("curie.md"), fixture_text("einstein.md")] * 5)
DIMENSIONS = 256  # not MiniLM's 384 nor OpenAI's default 1536: the setting must reach the API


async def test_the_worker_image_processes_a_document_with_openai_and_no_minilm_files(
    settings: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    image = image_config("Dockerfile.worker")
    assert image.command == ["heysh", "worker"]
    assert image.env["HEYSH_EMBEDDER"] == "openai"
    queue = f"image-{uuid.uuid4().hex[:8]}"
    # A collection of its own: it holds OpenAI vectors, and the suite's holds MiniLM's.
    collection = f"ImageChunks{uuid.uuid4().hex[:8]}"
    no_minilm = tmp_path / "minilm"
    no_minilm.mkdir()
    (tmp_path / "home").mkdir()
    log = tmp_path / "worker.log"
    with OpenAIServer() as server, log.open("wb") as log_file:
        env = {
            **os.environ,
            # What the image sets for heysh (its paths under /app do not exist here) ...
            **{k: v for k, v in image.env.items() if k.startswith("HEYSH_")},
            # ... then this stack, in test mode, with the OpenAI API served locally.
            **stack.settings_env(),
            "HEYSH_ENV": "test",
            "HEYSH_TASK_QUEUE": queue,
            "HEYSH_WEAVIATE_COLLECTION": collection,
            "HEYSH_OPENAI_API_KEY": "test-key",
            "HEYSH_OPENAI_BASE_URL": server.base_url,
            "HEYSH_OPENAI_EMBEDDING_DIMENSIONS": str(DIMENSIONS),
            # No MiniLM: an empty model directory, and neither `heysh setup`'s cache nor a
            # tiktoken download cache is visible.
            "HEYSH_MINILM_DIR": str(no_minilm),
            "HEYSH_CACHE_DIR": str(tmp_path / "cache"),
            "HOME": str(tmp_path / "home"),
            "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken"),
            "PYTHONUNBUFFERED": "1",
        }
        worker = run_image_command(image, env, log_file)
        try:
            own = {"task_queue": queue, "weaviate_collection": collection}
            async with gateway(settings.model_copy(update=own)) as api:
                try:
                    domain = await active_domain(api, "kim", "Image worker")
                    added = await add_document(api, "kim", domain, "physicists", TEXT)
                    assert added["__typename"] == "AddDocumentSuccess", added
                    document = await wait_document(api, "kim", added["document"]["id"])
                except AssertionError as exc:
                    raise AssertionError(
                        f"{exc}\nworker exit status {worker.poll()}, its log:\n"
                        + log.read_text()[-3000:]
                    ) from exc
        finally:
            worker.terminate()
            worker.wait(20)
        embedded = server.requests_to("/v1/embeddings")
    assert document["status"] == "READY", document
    assert document["chunkCount"] > 0
    assert embedded
    assert {request.body["dimensions"] for request in embedded} == {DIMENSIONS}
    assert {request.body["model"] for request in embedded} == {"text-embedding-3-small"}

    client = weaviate_client(settings)
    await client.connect()
    try:
        chunks = client.collections.use(collection).with_tenant(tenant_name(raw_id(domain)))
        found = await chunks.query.fetch_objects(
            filters=Filter.by_property("document_id").equal(raw_id(added["document"]["id"])),
            include_vector=True,
            limit=1000,
        )
    finally:
        await client.close()
    assert len(found.objects) == document["chunkCount"]
    assert {len(obj.vector["default"]) for obj in found.objects} == {DIMENSIONS}
