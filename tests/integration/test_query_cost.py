"""Hostile queries are refused before any store is touched: cost, depth, aliases, page size."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from strawberry.relay import GlobalID

from heysh.config import Settings
from tests.support.documents import active_domain
from tests.support.graphql import GraphQLClient, gateway
from tests.support.query_count import StatementCounter

pytestmark = pytest.mark.integration

NESTED = """
query($first: Int) { domains(first: $first) { edges { node { id
  documents(first: 100) { edges { node { id
    domain { members(first: 100) { edges { node { role } } } } } } } } } } }
"""


@pytest.fixture
async def storeless(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """An api whose Postgres is a closed port: any query that reached a store would fail."""
    closed = settings.model_copy(
        update={"database_url": SecretStr("postgresql://postgres@127.0.0.1:9/postgres")}
    )
    async with gateway(closed) as client:
        yield client


def code(body: dict[str, object]) -> object:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return errors[0]["extensions"]["code"]


async def test_nested_connections_over_the_budget_are_refused_before_any_store_work(
    storeless: GraphQLClient,
) -> None:
    body = await storeless.execute(NESTED, {"first": 100}, user="costa")
    assert code(body) == "QUERY_TOO_COSTLY"
    assert body["data"] is None
    cost = body["errors"][0]["extensions"]["cost"]  # type: ignore[index]
    assert cost > 100 * 100 * 100


async def test_the_issues_nested_entities_query_is_refused_and_sends_no_statement(
    storeless: GraphQLClient, statements: StatementCounter
) -> None:
    query = """query { domains(first: 100) { edges { node { documents(first: 100) { edges {
      node { entities(first: 100) { edges { node { id name } } } } } } } } } }"""
    with statements.counting() as sent:
        body = await storeless.execute(query, user="costa")
    assert code(body) == "QUERY_TOO_COSTLY"
    assert body["data"] is None
    assert sent == []  # neither Postgres nor Neo4j heard of it


async def test_a_huge_first_depth_and_aliases_are_refused_before_any_store_work(
    storeless: GraphQLClient, statements: StatementCounter
) -> None:
    with statements.counting() as sent:
        huge = await storeless.execute(
            "query { domains(first: 1000000) { edges { node { id } } } }", user="costa"
        )
        assert code(huge) == "QUERY_TOO_COSTLY"
        # 5 x 4 levels: depth 20 below domains.
        deep = "query { domains { edges { node { "
        deep += "domain: documents { edges { node { domain { " * 5
        deep += "id" + " } } } }" * 5 + " } } } }"
        assert code(await storeless.execute(deep, user="costa")) == "GRAPHQL_VALIDATION_FAILED"
        aliases = "query { " + " ".join(f"a{i}: viewer {{ id }}" for i in range(1000)) + " }"
        refused = await storeless.execute(aliases, user="costa")
        assert code(refused) == "GRAPHQL_VALIDATION_FAILED"
    assert sent == []


async def test_fragments_and_variables_count_toward_the_cost(storeless: GraphQLClient) -> None:
    query = """
    query($n: Int = 100) { domains(first: $n) { ...page } }
    fragment page on DomainConnection { edges { node {
      documents(first: 100) { edges { node { id title status } } } } } }
    """
    assert code(await storeless.execute(query, user="costa")) == "QUERY_TOO_COSTLY"
    small = await storeless.execute(query, {"n": 1}, user="costa")
    assert code(small) == "STORE_UNAVAILABLE"  # within budget: it ran, and met the closed port


NESTED_NEIGHBORHOOD = """
query($id: ID!, $limit: Int!) { neighborhood(entityId: $id, limit: $limit) {
  nodes { id domain { documents(first: 100) { edges { node { id title } } } } }
  edges { source { id } target { id } } } }
"""


async def test_a_neighborhood_limit_multiplies_its_selections_like_first(
    storeless: GraphQLClient,
) -> None:
    entity = str(GlobalID("Entity", str(uuid.uuid4())))
    huge = await storeless.execute(NESTED_NEIGHBORHOOD, {"id": entity, "limit": 500}, user="costa")
    assert code(huge) == "QUERY_TOO_COSTLY"
    assert huge["data"] is None
    assert huge["errors"][0]["extensions"]["cost"] > 500 * 100
    # Within budget it runs, as far as the caller's memberships in the (closed) Postgres.
    small = await storeless.execute(NESTED_NEIGHBORHOOD, {"id": entity, "limit": 2}, user="costa")
    assert code(small) == "STORE_UNAVAILABLE"


async def test_an_ordinary_nested_page_is_within_the_budget(api: GraphQLClient) -> None:
    domain = await active_domain(api, "costa", "Budget")
    data = await api.data(
        "query { domains(first: 20) { edges { node { id name status lastRun { status }"
        " documents(first: 20) { edges { node { id title status lastRun { status } } } }"
        " } } } }",
        user="costa",
    )
    assert domain in [edge["node"]["id"] for edge in data["domains"]["edges"]]
