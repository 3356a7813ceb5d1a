"""Relay connections: keyset pages, opaque cursors tied to their connection, capped sizes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.documents import active_domain, add_document
from tests.support.graphql import GraphQLClient

pytestmark = pytest.mark.integration

DOCUMENTS = """
query($id: ID!, $first: Int, $after: String) { domain(id: $id) {
  documents(first: $first, after: $after) {
    edges { cursor node { id title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }
"""
DOMAINS = """
query($first: Int, $after: String) { domains(first: $first, after: $after) {
  edges { cursor node { id } } pageInfo { endCursor } } }
"""
TWO_DOMAINS = """
query($a: ID!, $b: ID!) {
  a: domain(id: $a) { documents(first: 2) { edges { node { title } } } }
  b: domain(id: $b) { documents(first: 2) { edges { node { title } } } } }
"""


async def documents_page(
    api: GraphQLClient, user: str, domain: str, first: int | None, after: str | None = None
) -> Any:
    variables = {"id": domain, "first": first, "after": after}
    return (await api.data(DOCUMENTS, variables, user=user))["domain"]["documents"]


async def test_documents_page_newest_first_to_the_last_page_and_stop(api: GraphQLClient) -> None:
    domain = await active_domain(api, "paula", "Pages")
    titles = [f"note {i}" for i in range(5)]
    for title in titles:
        added = await add_document(api, "paula", domain, title, f"{title}: Ada Lovelace wrote.")
        assert added["__typename"] == "AddDocumentSuccess", added

    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = await documents_page(api, "paula", domain, 2, after)
        pages.append(page)
        seen.extend(edge["node"]["title"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(titles))  # newest first, none twice, none missed
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert pages[0]["pageInfo"]["hasPreviousPage"] is False
    assert all(p["pageInfo"]["hasPreviousPage"] for p in pages[1:])
    assert pages[-1]["pageInfo"]["endCursor"] == pages[-1]["edges"][-1]["cursor"]

    exact = await documents_page(api, "paula", domain, 5)
    assert len(exact["edges"]) == 5
    assert exact["pageInfo"]["hasNextPage"] is False
    past_the_end = await documents_page(api, "paula", domain, 2, exact["pageInfo"]["endCursor"])
    assert past_the_end["edges"] == []
    assert past_the_end["pageInfo"]["hasNextPage"] is False
    assert past_the_end["pageInfo"]["startCursor"] is None
    none_asked = await documents_page(api, "paula", domain, 0)
    assert none_asked["edges"] == []
    assert none_asked["pageInfo"]["hasNextPage"] is True


async def test_an_empty_domain_has_an_empty_first_page(api: GraphQLClient) -> None:
    domain = await active_domain(api, "paula", "Empty")
    page = await documents_page(api, "paula", domain, None)
    assert page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_pages_of_several_domains_in_one_request_stay_apart(api: GraphQLClient) -> None:
    first = await active_domain(api, "paula", "Left")
    second = await active_domain(api, "paula", "Right")
    for domain, side in ((first, "left"), (second, "right")):
        for i in range(3):
            await add_document(api, "paula", domain, f"{side} {i}", f"{side} {i}: Paris.")
    data = await api.data(TWO_DOMAINS, {"a": first, "b": second}, user="paula")
    assert [e["node"]["title"] for e in data["a"]["documents"]["edges"]] == ["left 2", "left 1"]
    assert [e["node"]["title"] for e in data["b"]["documents"]["edges"]] == ["right 2", "right 1"]


async def test_cursors_of_another_connection_tampered_or_oversized_pages_are_refused(
    api: GraphQLClient,
) -> None:
    domain = await active_domain(api, "paula", "Refusals")
    await add_document(api, "paula", domain, "one", "One: Marie Curie.")
    await add_document(api, "paula", domain, "two", "Two: Pierre Curie.")
    document_cursor = (await documents_page(api, "paula", domain, 1))["pageInfo"]["endCursor"]
    domain_cursor = (await api.data(DOMAINS, {"first": 1}, user="paula"))["domains"]["pageInfo"][
        "endCursor"
    ]
    tampered = document_cursor[:-4] + ("AAAA" if document_cursor[-4:] != "AAAA" else "BBBB")

    for after in (domain_cursor, tampered, "not-a-cursor", ""):
        body = await api.execute(
            DOCUMENTS, {"id": domain, "first": 1, "after": after}, user="paula"
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (after, body)
    foreign = await api.execute(DOMAINS, {"first": 1, "after": document_cursor}, user="paula")
    assert foreign["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    limit = api.settings.max_page_size
    for first in (limit + 1, -1):
        body = await api.execute(DOCUMENTS, {"id": domain, "first": first}, user="paula")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (first, body)
    huge = await api.execute(DOCUMENTS, {"id": domain, "first": 1_000_000}, user="paula")
    assert huge["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    full = await documents_page(api, "paula", domain, limit)
    assert len(full["edges"]) == 2
