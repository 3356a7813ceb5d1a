from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import openai
import pytest

from heysh.errors import HeyshError
from heysh.local.install import ensure_minilm
from heysh.pipeline.embedding import Embedder, EmbeddingError, MiniLmEmbedder, OpenAIEmbedder
from tests.support.openai_server import (
    OpenAIServer,
    Reply,
    Request,
    embeddings_handler,
    error_body,
    fake_embedding,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "minilm_reference_embeddings.json"
EMBEDDINGS = "/v1/embeddings"

# --- MiniLM --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm() -> MiniLmEmbedder:
    return MiniLmEmbedder(ensure_minilm())


def reference() -> list[tuple[str, list[float]]]:
    items = json.loads(FIXTURE.read_text())["items"]
    return [(item["text"], item["embedding"]) for item in items]


async def test_minilm_matches_the_reference_vectors(minilm: MiniLmEmbedder) -> None:
    texts, expected = zip(*reference(), strict=True)
    got = np.array(await minilm.embed(list(texts)))
    want = np.array(expected)
    cosines = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)  # got is unit length
    print(f"\nMiniLM vs reference: minimum cosine {cosines.min():.10f}")
    worst = int(cosines.argmin())
    assert cosines.min() >= 0.999, f"{texts[worst]!r}: cosine {cosines[worst]}"


async def test_minilm_batch_gives_the_same_vectors_as_one_by_one(minilm: MiniLmEmbedder) -> None:
    texts = [text for text, _ in reference()]
    together = np.array(await minilm.embed(texts))
    alone = np.array([(await minilm.embed([text]))[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


async def test_minilm_vectors_are_unit_length_and_384_wide(minilm: MiniLmEmbedder) -> None:
    vectors = await minilm.embed(["a", "", "graph databases " * 400, "中文 🚀"])
    assert minilm.dimensions == 384
    assert [len(v) for v in vectors] == [384] * 4
    assert all(isinstance(x, float) for x in vectors[0])
    np.testing.assert_allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0, atol=1e-5)


async def test_minilm_batches_smaller_than_the_input_keep_order() -> None:
    small = MiniLmEmbedder(ensure_minilm(), batch_size=3)
    texts = [text for text, _ in reference()][:10]
    got = np.array(await small.embed(texts))
    want = np.array([vector for _, vector in reference()][:10])
    assert ((got * want).sum(axis=1) > 0.999).all()


async def test_minilm_embeds_off_the_event_loop(minilm: MiniLmEmbedder) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        await minilm.embed(["knowledge graphs connect entities " * 20] * 32)
    finally:
        ticker.cancel()
    assert ticks > 3


async def test_minilm_embeds_nothing_for_no_texts(minilm: MiniLmEmbedder) -> None:
    assert await minilm.embed([]) == []


def test_minilm_without_model_files_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="heysh setup") as caught:
        MiniLmEmbedder(tmp_path)
    assert isinstance(caught.value, HeyshError)


def test_both_embedders_satisfy_the_protocol(minilm: MiniLmEmbedder) -> None:
    embedders: list[Embedder] = [minilm, OpenAIEmbedder(openai.AsyncOpenAI(api_key="unused"))]
    assert [(e.name, e.dimensions) for e in embedders] == [
        ("all-minilm-l6-v2", 384),
        ("text-embedding-3-small", 1536),
    ]


# --- OpenAI, through the real SDK against a local server ----------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture
async def client(server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=2)
    yield sdk
    await sdk.close()


def quick_retry(status: int = 500) -> Reply:
    """A failure the SDK retries; ``retry-after-ms`` keeps its back-off short."""
    return Reply(status, error_body("temporarily broken"), {"retry-after-ms": "10"})


async def test_openai_batches_inputs_and_keeps_their_order(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    embedder = OpenAIEmbedder(client, dimensions=8, batch_size=4)
    texts = [f"text number {i}" for i in range(10)]
    vectors = await embedder.embed(texts)
    assert vectors == [fake_embedding(text, 8) for text in texts]
    requests = server.requests_to(EMBEDDINGS)
    assert len(requests) == math.ceil(10 / 4)
    assert [r.body["input"] for r in requests] == [texts[0:4], texts[4:8], texts[8:10]]
    assert {r.body["model"] for r in requests} == {"text-embedding-3-small"}
    assert {r.body["dimensions"] for r in requests} == {8}
    assert requests[0].headers["authorization"] == "Bearer test-key"


async def test_openai_keeps_order_when_the_server_answers_out_of_order(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    def reversed_reply(request: Request) -> Reply:
        reply = embeddings_handler(request)
        return replace(reply, body={**reply.body, "data": reply.body["data"][::-1]})

    server.queue(EMBEDDINGS, reversed_reply)
    texts = ["first", "second", "third"]
    assert await OpenAIEmbedder(client, dimensions=8).embed(texts) == [
        fake_embedding(text, 8) for text in texts
    ]


async def test_openai_bounds_the_tokens_in_one_request(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    embedder = OpenAIEmbedder(client, dimensions=8, batch_size=100, max_request_tokens=250)
    texts = ["x" * 100] * 5  # 100 each: two fit under 250
    assert len(await embedder.embed(texts)) == 5
    assert [len(r.body["input"]) for r in server.requests_to(EMBEDDINGS)] == [2, 2, 1]


async def test_openai_server_error_is_retried_by_the_sdk(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    server.queue(EMBEDDINGS, quick_retry(500))
    vectors = await OpenAIEmbedder(client, dimensions=8).embed(["retry me"])
    assert vectors == [fake_embedding("retry me", 8)]
    assert len(server.requests_to(EMBEDDINGS)) == 2


async def test_openai_gives_up_after_the_sdk_retries(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    server.queue(EMBEDDINGS, quick_retry(503), times=3)
    with pytest.raises(EmbeddingError, match="failed: Error code: 503 - temporarily broken"):
        await OpenAIEmbedder(client, dimensions=8).embed(["never"])
    assert len(server.requests_to(EMBEDDINGS)) == 3  # the first try and max_retries=2


async def test_openai_client_error_is_not_retried(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    server.queue(EMBEDDINGS, Reply(400, error_body("input too long", "invalid_request_error")))
    with pytest.raises(EmbeddingError, match="input too long"):
        await OpenAIEmbedder(client, dimensions=8).embed(["too long"])
    assert len(server.requests_to(EMBEDDINGS)) == 1


async def test_openai_reply_with_too_few_vectors_is_an_error(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    def one_short(request: Request) -> Reply:
        reply = embeddings_handler(request)
        return replace(reply, body={**reply.body, "data": reply.body["data"][:-1]})

    server.queue(EMBEDDINGS, one_short)
    with pytest.raises(EmbeddingError, match="2 vectors for 3 texts"):
        await OpenAIEmbedder(client, dimensions=8).embed(["a", "b", "c"])


async def test_openai_reply_with_no_vectors_is_an_error(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    server.queue(EMBEDDINGS, Reply(200, {"object": "list", "data": [], "model": "m"}))
    with pytest.raises(EmbeddingError, match="failed"):
        await OpenAIEmbedder(client, dimensions=8).embed(["a"])


async def test_openai_vectors_of_the_wrong_size_are_an_error(client: openai.AsyncOpenAI) -> None:
    # A model without a `dimensions` parameter answers in its own size (the server's 1536).
    embedder = OpenAIEmbedder(client, "local-embedder", dimensions=768)
    with pytest.raises(EmbeddingError, match="1536 dimensions, expected 768"):
        await embedder.embed(["a"])


async def test_openai_sends_dimensions_only_to_models_that_take_it(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    await OpenAIEmbedder(client, "text-embedding-ada-002").embed(["a"])
    await OpenAIEmbedder(client, "text-embedding-3-large", dimensions=256).embed(["a"])
    bodies = [r.body for r in server.requests_to(EMBEDDINGS)]
    assert "dimensions" not in bodies[0]
    assert bodies[1]["dimensions"] == 256


async def test_openai_embeds_nothing_without_a_request(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    assert await OpenAIEmbedder(client).embed([]) == []
    assert server.requests == []


async def test_openai_refuses_empty_texts_before_asking(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(EmbeddingError, match=r"empty texts \(positions \[1\]"):
        await OpenAIEmbedder(client).embed(["a", ""])
    assert server.requests == []


async def test_openai_float_encoding_is_served_too(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    response = await client.embeddings.create(
        model="m", input=["a", "b"], dimensions=4, encoding_format="float"
    )
    assert [d.embedding for d in response.data] == [fake_embedding(t, 4) for t in "ab"]


async def test_unknown_routes_get_an_openai_style_404(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.NotFoundError, match="no route GET /v1/models"):
        await client.models.list()
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]
