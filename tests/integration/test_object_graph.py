"""The knowledge graph read through GraphQL: every relation field, paged by cursor connections,
checked against the stores the pipeline wrote (documents ingested through addDocument)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from strawberry.relay import GlobalID

from heysh.services import Services
from tests.support.documents import active_domain, fixture_text, raw_id, ready_document
from tests.support.graphql import GraphQLClient
from tests.support.store_state import entity_keys

pytestmark = pytest.mark.integration

OWNER = "gwen-graph"
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"


@dataclass(frozen=True)
class Corpus:
    domain: str
    curie: str
    einstein: str


@pytest.fixture(scope="module")
async def corpus(api: GraphQLClient) -> Corpus:
    domain = await active_domain(api, OWNER, "Object graph")
    curie = await ready_document(api, OWNER, domain, "curie.md")
    einstein = await ready_document(api, OWNER, domain, "einstein.md")
    return Corpus(domain, curie["id"], einstein["id"])


async def all_pages(
    api: GraphQLClient, query: str, variables: dict[str, Any], path: list[str], first: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every node of a connection, read ``first`` at a time; also each page's pageInfo."""
    nodes: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    after = None
    while True:
        data = await api.data(query, {**variables, "first": first, "after": after}, user=OWNER)
        for key in path:
            data = data[key]
        nodes += [edge["node"] for edge in data["edges"]]
        infos.append(data["pageInfo"])
        if not data["pageInfo"]["hasNextPage"]:
            return nodes, infos
        after = data["pageInfo"]["endCursor"]


CHUNKS = f"""
query($id: ID!, $first: Int, $after: String) {{ document(id: $id) {{
  chunkCount chunks(first: $first, after: $after) {{
    edges {{ cursor node {{ id index text startOffset endOffset document {{ id }} }} }}
    {PAGE_INFO} }} }} }}
"""


async def test_document_chunks_page_in_order_and_each_is_its_slice_of_the_text(
    api: GraphQLClient, corpus: Corpus
) -> None:
    content = fixture_text("curie.md")
    chunks, infos = await all_pages(api, CHUNKS, {"id": corpus.curie}, ["document", "chunks"], 2)
    count = (await api.data(CHUNKS, {"id": corpus.curie, "first": 0}, user=OWNER))["document"]
    assert len(chunks) == count["chunkCount"] >= 2
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk["text"] == content[chunk["startOffset"] : chunk["endOffset"]]
        assert chunk["document"]["id"] == corpus.curie
    assert infos[0]["hasPreviousPage"] is False
    assert all(info["hasPreviousPage"] for info in infos[1:])
    assert infos[-1]["hasNextPage"] is False

    # first: 0 says whether anything is there; an exact page has no next page.
    empty = count["chunks"]
    assert (empty["edges"], empty["pageInfo"]["hasNextPage"]) == ([], True)
    exact = await api.data(CHUNKS, {"id": corpus.curie, "first": len(chunks)}, user=OWNER)
    assert len(exact["document"]["chunks"]["edges"]) == len(chunks)
    assert exact["document"]["chunks"]["pageInfo"]["hasNextPage"] is False
    past = await api.data(
        CHUNKS,
        {
            "id": corpus.curie,
            "first": 5,
            "after": exact["document"]["chunks"]["pageInfo"]["endCursor"],
        },
        user=OWNER,
    )
    assert past["document"]["chunks"]["edges"] == []
    assert past["document"]["chunks"]["pageInfo"]["hasNextPage"] is False


DOMAIN_ENTITIES = f"""
query($id: ID!, $first: Int, $after: String, $type: String, $name: String) {{ domain(id: $id) {{
  entities(first: $first, after: $after, type: $type, nameContains: $name) {{
    edges {{ node {{ id name type mentionCount }} }} {PAGE_INFO} }} }} }}
"""


async def test_domain_entities_page_by_name_and_filter_by_type_and_name(
    api: GraphQLClient, services: Services, corpus: Corpus
) -> None:
    everything, _ = await all_pages(
        api, DOMAIN_ENTITIES, {"id": corpus.domain}, ["domain", "entities"], 7
    )
    keys = await entity_keys(services, raw_id(corpus.domain))
    assert sorted(raw_id(e["id"]) for e in everything) == sorted(k for k, _, _ in keys)
    assert [(e["name"], raw_id(e["id"])) for e in everything] == sorted(
        (e["name"], raw_id(e["id"])) for e in everything
    )
    assert all(e["mentionCount"] >= 1 for e in everything)

    people, _ = await all_pages(
        api, DOMAIN_ENTITIES, {"id": corpus.domain, "type": "PERSON"}, ["domain", "entities"], 5
    )
    assert people
    assert {e["type"] for e in people} == {"PERSON"}
    assert len(people) == sum(1 for _, _, t in keys if t == "PERSON")

    curies, _ = await all_pages(
        api, DOMAIN_ENTITIES, {"id": corpus.domain, "name": "cURIE"}, ["domain", "entities"], 5
    )
    expected = sorted(name for _, name, _ in keys if "curie" in name.lower())
    assert sorted(e["name"] for e in curies) == expected
    assert {"Marie Curie", "Pierre Curie"} <= set(expected)


ENTITY_LINKS = f"""
query($id: ID!) {{ entity(id: $id) {{
  id name
  documents(first: 10) {{ edges {{ node {{ id title }} }} {PAGE_INFO} }}
  mentions(first: 50) {{ edges {{ node {{ id document {{ id }} entities(first: 30) {{
    edges {{ node {{ id }} }} }} }} }} {PAGE_INFO} }}
}} }}
"""


async def entity_named(services: Services, domain: str, name: str, type_: str) -> str:
    keys = await entity_keys(services, raw_id(domain))
    (found,) = [k for k, n, t in keys if (n, t) == (name, type_)]
    return str(GlobalID("Entity", found))


async def test_an_entity_named_in_two_documents_lists_both_and_every_chunk_naming_it(
    api: GraphQLClient, services: Services, corpus: Corpus
) -> None:
    marie = await entity_named(services, corpus.domain, "Marie Curie", "PERSON")
    entity = (await api.data(ENTITY_LINKS, {"id": marie}, user=OWNER))["entity"]
    documents = {edge["node"]["id"] for edge in entity["documents"]["edges"]}
    assert documents == {corpus.curie, corpus.einstein}

    mentions = [edge["node"] for edge in entity["mentions"]["edges"]]
    assert {m["document"]["id"] for m in mentions} == documents
    # Each chunk that mentions her lists her among its entities.
    assert all(marie in {e["node"]["id"] for e in m["entities"]["edges"]} for m in mentions)
    expected = 0
    for document in documents:
        async for page in services.journal.entity_pages(uuid.UUID(raw_id(document)), 500):
            expected += sum(len(e.chunk_ids) for e in page if str(e.entity_id) == raw_id(marie))
    assert len(mentions) == expected
    assert entity["mentions"]["pageInfo"]["hasNextPage"] is False


RELATIONSHIPS = f"""
query($id: ID!, $direction: RelationshipDirection!, $types: [String!], $first: Int,
      $after: String) {{ entity(id: $id) {{
  relationships(first: $first, after: $after, direction: $direction, types: $types) {{
    edges {{ node {{ id type weight source {{ id }} target {{ id }} }} }} {PAGE_INFO} }} }} }}
"""
NEIGHBORS = f"""
query($id: ID!, $first: Int, $after: String) {{ entity(id: $id) {{
  neighbors(first: $first, after: $after) {{ edges {{ node {{ id name }} }} {PAGE_INFO} }} }} }}
"""
EVIDENCE = f"""
query($id: ID!, $first: Int, $after: String) {{ node(id: $id) {{ ... on Relationship {{
  weight evidence(first: $first, after: $after) {{
    edges {{ node {{ id text document {{ id }} entities(first: 30) {{ edges {{ node {{ id }} }} }}
    }} }} {PAGE_INFO} }} }} }} }}
"""


async def test_relationships_follow_direction_and_types_and_their_evidence_adds_up_to_weight(
    api: GraphQLClient, services: Services, corpus: Corpus
) -> None:
    marie = await entity_named(services, corpus.domain, "Marie Curie", "PERSON")
    path = ["entity", "relationships"]

    async def read(direction: str, types: list[str] | None = None) -> list[dict[str, Any]]:
        variables = {"id": marie, "direction": direction, "types": types}
        return (await all_pages(api, RELATIONSHIPS, variables, path, 4))[0]

    both, out, into = await read("BOTH"), await read("OUT"), await read("IN")
    assert both
    assert out
    assert into
    assert all(r["source"]["id"] == marie for r in out)
    assert all(r["target"]["id"] == marie for r in into)
    assert sorted(r["id"] for r in both) == sorted(r["id"] for r in out + into)
    weights = [r["weight"] for r in both]
    assert weights == sorted(weights, reverse=True)  # heaviest first, across pages

    one_type = both[0]["type"]
    typed = await read("BOTH", [one_type])
    assert typed
    assert all(r["type"] == one_type for r in typed)
    assert len(typed) == sum(1 for r in both if r["type"] == one_type)
    assert await read("BOTH", ["NO_SUCH_TYPE"]) == []

    neighbors, _ = await all_pages(api, NEIGHBORS, {"id": marie}, ["entity", "neighbors"], 5)
    others = {r["target"]["id"] if r["source"]["id"] == marie else r["source"]["id"] for r in both}
    assert {n["id"] for n in neighbors} == others
    assert len(neighbors) == len(others)  # each neighbour once, however many edges join them

    heaviest = both[0]
    evidence, _ = await all_pages(api, EVIDENCE, {"id": heaviest["id"]}, ["node", "evidence"], 2)
    assert len(evidence) == heaviest["weight"] >= 1
    assert len({c["id"] for c in evidence}) == len(evidence)
    for chunk in evidence:
        mentioned = {e["node"]["id"] for e in chunk["entities"]["edges"]}
        assert {heaviest["source"]["id"], heaviest["target"]["id"]} <= mentioned


DOCUMENT_ENTITIES = f"""
query($id: ID!, $first: Int, $after: String) {{ document(id: $id) {{ entityCount
  entities(first: $first, after: $after) {{ edges {{ node {{ id name }} }} {PAGE_INFO} }} }} }}
"""
STATS = """
query($id: ID!) { domain(id: $id) { stats {
  documents readyDocuments chunks entities relationships } } }
"""


async def test_document_entities_and_domain_stats_match_what_the_pipeline_wrote(
    api: GraphQLClient, services: Services, corpus: Corpus
) -> None:
    entities, _ = await all_pages(
        api, DOCUMENT_ENTITIES, {"id": corpus.einstein}, ["document", "entities"], 10
    )
    journal: set[str] = set()
    async for page in services.journal.entity_pages(uuid.UUID(raw_id(corpus.einstein)), 500):
        journal |= {str(e.entity_id) for e in page}
    assert {raw_id(e["id"]) for e in entities} == journal
    assert len(entities) == len(journal)

    stats = (await api.data(STATS, {"id": corpus.domain}, user=OWNER))["domain"]["stats"]
    counts = await services.graph.domain_counts(raw_id(corpus.domain))
    assert stats == {
        "documents": 2,
        "readyDocuments": 2,
        "chunks": counts.chunks,
        "entities": counts.entities,
        "relationships": counts.relationships,
    }
    assert counts.chunks > 0
    assert counts.entities > 0
    assert counts.relationships > 0


def tampered(cursor: str) -> str:
    kind, *values = json.loads(base64.urlsafe_b64decode(cursor))
    return base64.urlsafe_b64encode(json.dumps([kind, *values, "x"]).encode()).decode()


async def test_a_cursor_from_another_connection_or_tampered_with_is_refused(
    api: GraphQLClient, services: Services, corpus: Corpus
) -> None:
    chunks = await api.data(CHUNKS, {"id": corpus.curie, "first": 1}, user=OWNER)
    chunk_cursor = chunks["document"]["chunks"]["pageInfo"]["endCursor"]
    entities = await api.data(DOMAIN_ENTITIES, {"id": corpus.domain, "first": 1}, user=OWNER)
    entity_cursor = entities["domain"]["entities"]["pageInfo"]["endCursor"]
    marie = await entity_named(services, corpus.domain, "Marie Curie", "PERSON")

    refusals = [
        (NEIGHBORS, {"id": marie, "after": entity_cursor}),  # another entity connection's
        (DOCUMENT_ENTITIES, {"id": corpus.curie, "after": chunk_cursor}),
        (CHUNKS, {"id": corpus.curie, "after": tampered(chunk_cursor)}),
        (CHUNKS, {"id": corpus.curie, "after": "bm90IGpzb24="}),
        (DOMAIN_ENTITIES, {"id": corpus.domain, "after": "%%%"}),
    ]
    for query, variables in refusals:
        body = await api.execute(query, {"first": 5, **variables}, user=OWNER)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert "cursor" in error["message"]


async def test_chunks_and_relationships_are_nodes_only_their_domains_members_can_read(
    api: GraphQLClient, corpus: Corpus
) -> None:
    chunks = await api.data(CHUNKS, {"id": corpus.curie, "first": 1}, user=OWNER)
    chunk = chunks["document"]["chunks"]["edges"][0]["node"]
    node = "query($id: ID!) { node(id: $id) { id ... on Chunk { index text } } }"
    found = (await api.data(node, {"id": chunk["id"]}, user=OWNER))["node"]
    assert found == {"id": chunk["id"], "index": chunk["index"], "text": chunk["text"]}
    unknown = str(GlobalID("Chunk", str(uuid.uuid4())))
    for user in ("sam-stranger", OWNER):
        body = await api.execute(node, {"id": unknown}, user=user)
        assert body == {"data": {"node": None}}
    assert await api.execute(node, {"id": chunk["id"]}, user="sam-stranger") == {
        "data": {"node": None}
    }
