"""A page of documents with nested chunks and entities costs a number of store round trips set
by the query's depth, not by how many documents the page holds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.documents import active_domain, add_document, wait_document
from tests.support.graphql import GraphQLClient
from tests.support.query_count import StatementCounter

pytestmark = pytest.mark.integration

OWNER = "bea-batch"
NESTED = """
query($id: ID!, $first: Int!) { domain(id: $id) { name documents(first: $first) { edges { node {
  title
  chunks(first: 3) { edges { node { index entities(first: 3) { edges { node { name
      mentionCount } } } } } }
  entities(first: 3) { edges { node { name type } } }
} } } } }
"""
PEOPLE = [
    ("Ada Lovelace", "Charles Babbage", "London"),
    ("Grace Hopper", "Howard Aiken", "Harvard University"),
    ("Alan Turing", "Max Newman", "Manchester"),
    ("Katherine Johnson", "John Glenn", "Virginia"),
    ("Edsger Dijkstra", "Tony Hoare", "Amsterdam"),
]


def report(number: int) -> str:
    first, second, place = PEOPLE[number % len(PEOPLE)]
    return (
        f"Report {number}. {first} wrote to {second} from {place} about machine number {number}. "
        f"{second} answered {first} the next week, and both met in {place} in spring."
    )


async def test_a_page_of_fifty_documents_costs_as_many_round_trips_as_a_page_of_two(
    api: GraphQLClient, statements: StatementCounter
) -> None:
    domain = await active_domain(api, OWNER, "Batched reads")
    added = await asyncio.gather(
        *(add_document(api, OWNER, domain, f"Report {i}", report(i)) for i in range(50))
    )
    documents = await asyncio.gather(
        *(wait_document(api, OWNER, a["document"]["id"], within=600) for a in added)
    )
    assert {d["status"] for d in documents} == {"READY"}

    async def read(first: int) -> tuple[list[dict[str, Any]], list[str]]:
        with statements.counting() as sent:
            data = await api.data(NESTED, {"id": domain, "first": first}, user=OWNER)
        return [e["node"] for e in data["domain"]["documents"]["edges"]], sent

    few, few_sent = await read(2)
    many, many_sent = await read(50)
    assert (len(few), len(many)) == (2, 50)
    # The page really is nested all the way down, for every document.
    for document in many:
        chunks = [e["node"] for e in document["chunks"]["edges"]]
        assert chunks
        assert document["entities"]["edges"]
        assert any(chunk["entities"]["edges"] for chunk in chunks)

    assert sorted(many_sent) == sorted(few_sent)
    # Postgres: the caller's role, the domain, its documents. Neo4j: chunks, their entities,
    # the documents' entities. One statement per level of the query, at most.
    assert many_sent.count("postgres") <= 2
    assert many_sent.count("neo4j") <= 3
    print(f"statements for a nested page of 50 documents: {sorted(many_sent)}")
