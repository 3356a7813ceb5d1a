"""search(domainId, query, mode, limit, alpha): each mode, provenance, one graph join, refusals."""

from __future__ import annotations

import asyncio
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from neo4j import AsyncSession
from neo4j._async.work.transaction import AsyncTransactionBase
from strawberry.relay import GlobalID
from weaviate import WeaviateAsyncClient

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.pipeline.embedding import MiniLmEmbedder
from heysh.services import Services, weaviate_client
from heysh.stores.vectors import EmbedderMismatchError, EmbedderRecord, VectorStore
from tests.support.documents import (
    active_domain,
    add_document,
    fixture_text,
    raw_id,
    wait_document,
)
from tests.support.graphql import GraphQLClient, gateway

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

OWNER = "sara-search"
MODES = ("VECTOR", "KEYWORD", "HYBRID", "GRAPH")

# Small documents of one chunk each, beside curie.md and einstein.md. "machines" is the nearest
# chunk to a query about calculating machines and names no entity; "babbage" is a little less
# near but names Charles Babbage, whom three more documents name or relate to (the graph case).
INLINE = {
    "machines": (
        "Early calculating machines were mechanical devices of gears and wheels, built to add "
        "and multiply numbers automatically."
    ),
    "babbage": (
        "Charles Babbage designed the Difference Engine, a machine of gears for calculating "
        "numerical tables."
    ),
    "lovelace": (
        "Ada Lovelace wrote the first program for the Analytical Engine of Charles Babbage."
    ),
    "letters": (
        "Charles Babbage and Ada Lovelace corresponded in London about the Analytical Engine."
    ),
    "cambridge": (
        "Charles Babbage held the Lucasian chair at Cambridge University, a post Isaac Newton "
        "once held."
    ),
    "tides": "Ocean tides rise and fall twice a day as the Moon pulls on the seas.",
    "bees": "Honeybees tell their hive where flowers grow with a waggle dance.",
}

SEARCH = """
query($domainId: ID!, $query: String!, $mode: SearchMode!, $limit: Int!, $alpha: Float!) {
  search(domainId: $domainId, query: $query, mode: $mode, limit: $limit, alpha: $alpha) {
    hits {
      score vectorScore keywordScore graphScore
      chunk { id index text startOffset endOffset document { id } }
      document { id title }
      entities { id name type mentionCount }
    }
  }
}
"""


_graph_statements: ContextVar[list[str] | None] = ContextVar("graph_statements", default=None)


@contextmanager
def graph_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent to Neo4j by code run in this block, in this task and the tasks it
    starts (the api runs in-process; the worker's activities, in tasks of their own, do not
    count): transactions (execute_query's too) and auto-commit sessions both pass through."""

    def counted(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent = _graph_statements.get()
            if sent is not None:
                sent.append(str(getattr(query, "text", query)))
            return method(self, query, *args, **kwargs)

        return run

    for owner in (AsyncTransactionBase, AsyncSession):
        monkeypatch.setattr(owner, "run", counted(owner.run))
    sent: list[str] = []
    token = _graph_statements.set(sent)
    try:
        yield sent
    finally:
        _graph_statements.reset(token)
        monkeypatch.undo()


@dataclass(frozen=True)
class Corpus:
    domain: str  # global id
    documents: dict[str, str]  # title -> document global id
    contents: dict[str, str]  # title -> content as sent

    def title_of(self, document_id: str) -> str:
        (title,) = [t for t, d in self.documents.items() if d == document_id]
        return title


@pytest.fixture(scope="module")
async def corpus(api: GraphQLClient) -> Corpus:
    domain = await active_domain(api, OWNER, "Search")
    contents = {
        "curie.md": fixture_text("curie.md"),
        "einstein.md": fixture_text("einstein.md"),
        **INLINE,
    }
    added = {}
    for title, content in contents.items():
        added[title] = await add_document(api, OWNER, domain, title, content)
        assert added[title]["__typename"] == "AddDocumentSuccess", added[title]
    documents = await asyncio.gather(
        *(wait_document(api, OWNER, a["document"]["id"]) for a in added.values())
    )
    assert all(d["status"] == "READY" for d in documents), documents
    return Corpus(domain, {t: a["document"]["id"] for t, a in added.items()}, contents)


@pytest.fixture(scope="module")
async def weaviate(settings: Settings) -> AsyncIterator[WeaviateAsyncClient]:
    client = weaviate_client(settings)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def other_model_collection(weaviate: WeaviateAsyncClient) -> AsyncIterator[str]:
    """A chunk collection of its own, recorded as filled by another embedder than MiniLM."""
    name = f"SearchOtherModel{uuid.uuid4().hex[:8]}"
    await VectorStore(weaviate, name).ensure_collection("other-model", 768)
    try:
        yield name
    finally:
        await weaviate.collections.delete(name)


async def search(
    api: GraphQLClient,
    domain: str,
    query: str,
    mode: str = "HYBRID",
    *,
    limit: int = 10,
    alpha: float = 0.5,
    user: str = OWNER,
) -> list[dict[str, Any]]:
    variables = {"domainId": domain, "query": query, "mode": mode, "limit": limit, "alpha": alpha}
    data = await api.data(SEARCH, variables, user=user)
    assert data["search"] is not None, data
    hits: list[dict[str, Any]] = data["search"]["hits"]
    return hits


def titles(corpus: Corpus, hits: list[dict[str, Any]]) -> list[str]:
    return [corpus.title_of(hit["document"]["id"]) for hit in hits]


def hit_of(hits: list[dict[str, Any]], chunk_id: str) -> dict[str, Any]:
    (hit,) = [h for h in hits if h["chunk"]["id"] == chunk_id]
    return hit


# --- each mode finds what it is for ---------------------------------------------------------------


async def test_keyword_search_ranks_the_only_document_with_a_rare_word_first(
    api: GraphQLClient, corpus: Corpus
) -> None:
    hits = await search(api, corpus.domain, "pitchblende", "KEYWORD")
    assert hits
    assert set(titles(corpus, hits)) == {"curie.md"}  # no other document has the word
    for hit in hits:
        assert "pitchblende" in hit["chunk"]["text"].lower()
        assert hit["keywordScore"] is not None
        assert hit["keywordScore"] > 0
        assert hit["score"] == hit["keywordScore"]
        assert hit["vectorScore"] is None
        assert hit["graphScore"] is None


async def test_vector_search_finds_a_paraphrase_that_shares_no_word_with_the_document(
    api: GraphQLClient, corpus: Corpus
) -> None:
    query = "two awards for a pioneer who isolated glowing metals"
    words = set(re.findall(r"[a-z]+", corpus.contents["curie.md"].lower()))
    assert not {w for w in query.split() if len(w) > 3} & words  # a paraphrase, not a match

    hits = await search(api, corpus.domain, query, "VECTOR")
    assert titles(corpus, hits)[0] == "curie.md"
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert hit["score"] == hit["vectorScore"]
        assert -1.0 <= hit["vectorScore"] <= 1.0
        assert hit["keywordScore"] is None
        assert hit["graphScore"] is None


async def test_hybrid_search_fuses_keyword_and_vector_scores_as_the_single_modes_give_them(
    api: GraphQLClient, corpus: Corpus
) -> None:
    query = "Solvay gathering of physicists in Belgium"
    hybrid = await search(api, corpus.domain, query, "HYBRID")
    assert titles(corpus, hybrid)[0] == "einstein.md"
    top = hybrid[0]
    assert top["keywordScore"] is not None
    assert top["vectorScore"] is not None
    assert all(h["graphScore"] is None for h in hybrid)
    # Only einstein.md has a word of the query: the other hits came from the vector search alone.
    others = [h for h in hybrid if h is not top]
    assert others
    assert all(h["keywordScore"] is None and h["vectorScore"] is not None for h in others)

    vector = hit_of(await search(api, corpus.domain, query, "VECTOR"), top["chunk"]["id"])
    keyword = hit_of(await search(api, corpus.domain, query, "KEYWORD"), top["chunk"]["id"])
    assert math.isclose(top["vectorScore"], vector["vectorScore"], abs_tol=1e-5)
    assert math.isclose(top["keywordScore"], keyword["keywordScore"], rel_tol=1e-5)


async def test_hybrid_alpha_zero_is_keyword_only_and_one_is_vector_only(
    api: GraphQLClient, corpus: Corpus
) -> None:
    query = "Solvay gathering of physicists in Belgium"
    keyword_only = await search(api, corpus.domain, query, "HYBRID", alpha=0.0)
    assert titles(corpus, keyword_only) == ["einstein.md"]
    assert keyword_only[0]["vectorScore"] is None
    vector_only = await search(api, corpus.domain, query, "HYBRID", alpha=1.0)
    assert len(vector_only) == 10
    assert all(h["keywordScore"] is None for h in vector_only)


async def test_graph_search_lifts_a_chunk_about_a_well_connected_entity_above_the_nearest(
    api: GraphQLClient, corpus: Corpus
) -> None:
    query = "machines that calculate numbers"
    vector = await search(api, corpus.domain, query, "VECTOR", limit=50)  # every chunk
    ranked = titles(corpus, vector)
    assert ranked[0] == "machines"
    assert ranked.index("babbage") > ranked.index("machines")

    graph = await search(api, corpus.domain, query, "GRAPH")
    ranked = titles(corpus, graph)
    assert ranked.index("babbage") < ranked.index("machines")
    by_title = dict(zip(ranked, graph, strict=True))
    machines, babbage = by_title["machines"], by_title["babbage"]
    assert machines["entities"] == []
    assert machines["graphScore"] == 0.0
    assert "Charles Babbage" in {e["name"] for e in babbage["entities"]}
    assert babbage["graphScore"] > 0.5
    assert max(h["graphScore"] for h in graph) == pytest.approx(1.0)
    for hit in graph:
        assert 0.0 <= hit["graphScore"] <= 1.0
        assert hit["keywordScore"] is None
        assert hit["score"] == pytest.approx(0.5 * hit["vectorScore"] + 0.5 * hit["graphScore"])
        same = hit_of(vector, hit["chunk"]["id"])  # the vector score is the VECTOR mode's own
        assert math.isclose(hit["vectorScore"], same["vectorScore"], abs_tol=1e-6)


# --- provenance and the graph join ----------------------------------------------------------------


async def test_every_hit_carries_its_exact_place_in_its_document_and_its_entities(
    api: GraphQLClient, corpus: Corpus
) -> None:
    for mode in MODES:
        hits = await search(api, corpus.domain, "Marie Curie in Paris", mode)
        assert hits, mode
        for hit in hits:
            chunk, document = hit["chunk"], hit["document"]
            content = corpus.contents[corpus.title_of(document["id"])]
            assert chunk["text"] == content[chunk["startOffset"] : chunk["endOffset"]]
            assert chunk["document"]["id"] == document["id"]
            assert document["title"] == corpus.title_of(document["id"])
            names = [e["name"] for e in hit["entities"]]
            assert names == sorted(names)
            assert len(names) <= 50
            assert all(e["mentionCount"] >= 1 for e in hit["entities"])
            for name in ("Marie Curie", "Albert Einstein"):
                if name in chunk["text"]:
                    assert name in names, (name, chunk["text"])


async def test_a_search_with_ten_hits_joins_them_to_the_graph_in_one_query(
    api: GraphQLClient, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for mode in MODES:
        with graph_statements(monkeypatch) as sent:
            hits = await search(api, corpus.domain, "scientists and their discoveries", mode)
        if mode == "KEYWORD":
            assert hits, mode
        else:
            assert len(hits) == 10, mode
        assert any(hit["entities"] for hit in hits), mode
        assert len(sent) == 1, (mode, sent)


async def test_entities_and_chunks_read_by_a_search_resolve_as_nodes_afterwards(
    api: GraphQLClient, corpus: Corpus
) -> None:
    (hit, *_) = await search(api, corpus.domain, "pitchblende", "KEYWORD")
    entity = hit["entities"][0]
    node = await api.data(
        "query($id: ID!) { node(id: $id) { id ... on Entity { name } } }",
        {"id": entity["id"]},
        user=OWNER,
    )
    assert node["node"] == {"id": entity["id"], "name": entity["name"]}
    chunk = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Chunk { text } } }",
        {"id": hit["chunk"]["id"]},
        user=OWNER,
    )
    assert chunk["node"] == {"text": hit["chunk"]["text"]}


# --- ids are no words -----------------------------------------------------------------------------


async def test_keyword_search_never_matches_a_document_id(
    api: GraphQLClient,
    corpus: Corpus,
    services: Services,
    settings: Settings,
    weaviate: WeaviateAsyncClient,
) -> None:
    for title in ("curie.md", "babbage"):
        document_id = raw_id(corpus.documents[title])
        assert await services.vectors.count_document(raw_id(corpus.domain), document_id) > 0
        assert await search(api, corpus.domain, document_id, "KEYWORD") == []
    config = await weaviate.collections.use(settings.weaviate_collection).config.get()
    (document_id_property,) = [p for p in config.properties if p.name == "document_id"]
    assert document_id_property.index_searchable is False
    assert document_id_property.index_filterable is True


# --- who may search, and what --------------------------------------------------------------------


async def test_a_strangers_domain_answers_exactly_like_an_unknown_or_malformed_id(
    api: GraphQLClient, corpus: Corpus
) -> None:
    unknown = str(GlobalID("Domain", str(uuid.uuid4())))
    not_a_domain = corpus.documents["curie.md"]  # a real id of another type
    for mode in MODES:
        answers = []
        for domain, user in (
            (corpus.domain, "stan-stranger"),
            (unknown, OWNER),
            (not_a_domain, OWNER),
            ("not-a-global-id", OWNER),
        ):
            variables = {
                "domainId": domain,
                "query": "Marie Curie",
                "mode": mode,
                "limit": 10,
                "alpha": 0.5,
            }
            answers.append(await api.execute(SEARCH, variables, user=user))
        assert answers == [{"data": {"search": None}}] * 4, mode


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("limit", 0),
        ("limit", 51),
        ("limit", -3),
        ("alpha", -0.01),
        ("alpha", 1.5),
        ("query", ""),
        ("query", "   \n\t"),
        ("query", "x" * 1001),
        ("query", "radium\u0000"),
        ("query", "radium\u0007"),
    ],
)
async def test_out_of_range_arguments_are_refused_naming_the_argument(
    api: GraphQLClient, corpus: Corpus, argument: str, value: Any
) -> None:
    variables = {"domainId": corpus.domain, "query": "radium", "mode": "HYBRID", "limit": 10}
    variables = {**variables, "alpha": 0.5, argument: value}
    body = await api.execute(SEARCH, variables, user=OWNER)
    assert body["data"] == {"search": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(f"{argument} "), error


async def test_the_limits_themselves_are_accepted(api: GraphQLClient, corpus: Corpus) -> None:
    hits = await search(api, corpus.domain, "r" * 1000, "KEYWORD", limit=50, alpha=0.0)
    assert hits == []
    hits = await search(api, corpus.domain, "radium", "HYBRID", limit=50, alpha=1.0)
    assert len(hits) > 10  # every chunk of the corpus


async def test_a_domain_without_vectors_or_without_a_tenant_finds_nothing(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, OWNER, "Empty search")
    for mode in MODES:
        assert await search(api, domain, "Marie Curie", mode) == [], mode
    await services.vectors.delete_tenant(raw_id(domain))
    assert not await services.vectors.tenant_exists(raw_id(domain))
    for mode in MODES:
        assert await search(api, domain, "Marie Curie", mode) == [], mode


# --- one embedder per collection ------------------------------------------------------------------


async def test_the_collection_records_the_embedder_that_fills_it(services: Services) -> None:
    recorded = await services.vectors.recorded_embedder()
    assert recorded == EmbedderRecord(MiniLmEmbedder.name, MiniLmEmbedder.dimensions)


async def test_a_collection_without_a_record_is_adopted_and_then_held_to_it(
    weaviate: WeaviateAsyncClient,
) -> None:
    name = f"SearchLegacy{uuid.uuid4().hex[:8]}"
    await weaviate.collections.create(name)  # as collections were made before the record
    try:
        await VectorStore(weaviate, name).ensure_collection("model-a", 8)
        assert await VectorStore(weaviate, name).recorded_embedder() == EmbedderRecord("model-a", 8)
        with pytest.raises(EmbedderMismatchError, match=r"model-a \(8 dimensions\)"):
            await VectorStore(weaviate, name).ensure_collection("model-a", 16)
    finally:
        await weaviate.collections.delete(name)


async def test_the_api_refuses_to_embed_a_query_with_another_model_than_the_collections(
    api: GraphQLClient, settings: Settings, other_model_collection: str
) -> None:
    domain = await active_domain(api, OWNER, "Other model")
    other = settings.model_copy(update={"weaviate_collection": other_model_collection})
    async with gateway(other) as mismatched:
        for mode in ("VECTOR", "HYBRID", "GRAPH"):
            variables = {
                "domainId": domain,
                "query": "radium",
                "mode": mode,
                "limit": 10,
                "alpha": 0.5,
            }
            body = await mismatched.execute(SEARCH, variables, user=OWNER)
            assert body["data"] == {"search": None}
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "EMBEDDER_MISMATCH"
            assert "other-model (768 dimensions)" in error["message"]
            assert "all-minilm-l6-v2 (384 dimensions)" in error["message"]
        # BM25 embeds nothing, so it has nothing to refuse (that collection has no tenant).
        assert await search(mismatched, domain, "radium", "KEYWORD") == []


async def test_a_worker_with_another_embedder_than_the_collections_stops_in_one_line(
    stack: LocalStack, other_model_collection: str, weaviate: WeaviateAsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(EmbedderMismatchError) as refused:
        await VectorStore(weaviate, other_model_collection).ensure_collection(
            MiniLmEmbedder.name, MiniLmEmbedder.dimensions
        )
    assert "other-model (768 dimensions)" in str(refused.value)
    assert "all-minilm-l6-v2 (384 dimensions)" in str(refused.value)

    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    env.update(stack.settings_env())
    env["HEYSH_ENV"] = "test"
    env["HEYSH_WEAVIATE_COLLECTION"] = other_model_collection
    env["HEYSH_TASK_QUEUE"] = f"mismatch-{uuid.uuid4().hex[:8]}"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "heysh", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("heysh: the Weaviate collection"), last_line
    assert "other-model (768 dimensions)" in last_line
    assert "all-minilm-l6-v2 (384 dimensions)" in last_line
