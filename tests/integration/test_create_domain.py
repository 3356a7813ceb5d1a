"""createDomain end to end: GraphQL → Temporal workflow → Postgres, Neo4j and Weaviate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from strawberry.relay import GlobalID

from heysh.services import Services
from tests.support.graphql import GraphQLClient, eventually
from tests.support.store_state import domain_nodes, domain_row

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

CREATE = """
mutation Create($input: CreateDomainInput!) {
  createDomain(input: $input) {
    __typename
    ... on CreateDomainSuccess {
      domain { id name description status createdAt owner { id } }
      run { id kind status stage progress }
    }
    ... on UserError { code message field }
  }
}
"""

DOMAIN = """
query Domain($id: ID!) {
  domain(id: $id) { id name status error lastRun { id status } }
}
"""

NODE = "query($id: ID!) { node(id: $id) { id } }"

RUN = """
query Run($id: ID!) {
  workflowRun(id: $id) { id kind status stage progress error steps { name status } }
}
"""


async def create_domain(api: GraphQLClient, user: str, name: str) -> dict[str, Any]:
    data = await api.data(CREATE, {"input": {"name": name, "description": "d"}}, user=user)
    payload: dict[str, Any] = data["createDomain"]
    assert payload["__typename"] == "CreateDomainSuccess", payload
    return payload


async def wait_active(api: GraphQLClient, user: str, domain_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return (await api.data(DOMAIN, {"id": domain_id}, user=user))["domain"]

    # The run records its end just after the domain's status changes: wait for both.
    domain: dict[str, Any] = await eventually(
        read, lambda d: d["status"] != "CREATING" and d["lastRun"]["status"] != "RUNNING"
    )
    return domain


def node_id(global_id: str) -> str:
    return GlobalID.from_id(global_id).node_id


async def test_create_domain_returns_a_run_at_once_and_becomes_active_in_all_stores(
    api: GraphQLClient, services: Services
) -> None:
    payload = await create_domain(api, "alice", "  Marine biology  ")
    assert payload["domain"]["status"] == "CREATING"
    assert payload["domain"]["name"] == "Marine biology"
    assert payload["run"]["status"] == "RUNNING"
    assert payload["run"]["kind"] == "CREATE_DOMAIN"

    domain = await wait_active(api, "alice", payload["domain"]["id"])
    assert domain["status"] == "ACTIVE", domain
    assert domain["error"] is None
    assert domain["lastRun"]["id"] == payload["run"]["id"]

    raw_id = node_id(payload["domain"]["id"])
    row = await domain_row(services, UUID(raw_id))
    assert row is not None
    assert row.status == "ACTIVE"
    assert await domain_nodes(services, raw_id) == 1
    assert await services.vectors.tenant_exists(raw_id)

    run = (await api.data(RUN, {"id": payload["run"]["id"]}, user="alice"))["workflowRun"]
    assert run["status"] == "COMPLETED"
    assert run["progress"] == 1.0
    assert run["stage"] == "done"
    assert [(s["name"], s["status"]) for s in run["steps"]] == [
        ("graph", "DONE"),
        ("vectors", "DONE"),
        ("activate", "DONE"),
    ]


@pytest.mark.parametrize(
    ("name", "field", "fragment"),
    [("", "name", "empty"), ("   ", "name", "empty"), ("x" * 101, "name", "at most 100")],
)
async def test_create_domain_refuses_empty_or_overlong_names_as_typed_errors(
    api: GraphQLClient, name: str, field: str, fragment: str
) -> None:
    data = await api.data(CREATE, {"input": {"name": name}}, user="validator")
    payload = data["createDomain"]
    assert payload["__typename"] == "UserError"
    assert payload["code"] == "INVALID_INPUT"
    assert payload["field"] == field
    assert fragment in payload["message"]
    listing = await api.data("{ domains { edges { node { id } } } }", user="validator")
    assert listing["domains"]["edges"] == []


async def test_non_member_cannot_see_a_domain_exactly_as_for_an_unknown_id(
    api: GraphQLClient,
) -> None:
    payload = await create_domain(api, "owner-ann", "Private notes")
    domain_id, run_id = payload["domain"]["id"], payload["run"]["id"]
    await wait_active(api, "owner-ann", domain_id)
    unknown_domain = str(GlobalID("Domain", "00000000-0000-4000-8000-000000000000"))
    unknown_run = str(GlobalID("WorkflowRun", "create-domain-nope"))

    for probe_id in (domain_id, unknown_domain):
        seen = await api.execute(DOMAIN, {"id": probe_id}, user="intruder-bob")
        assert seen == {"data": {"domain": None}}
        seen = await api.execute(
            "query($id: ID!){ node(id: $id) { id } }", {"id": probe_id}, user="intruder-bob"
        )
        assert seen == {"data": {"node": None}}
    for probe_id in (run_id, unknown_run):
        seen = await api.execute(RUN, {"id": probe_id}, user="intruder-bob")
        assert seen == {"data": {"workflowRun": None}}
    listing = await api.data("{ domains { edges { node { id } } } }", user="intruder-bob")
    assert listing["domains"]["edges"] == []

    owner_view = await api.data(DOMAIN, {"id": domain_id}, user="owner-ann")
    assert owner_view["domain"]["name"] == "Private notes"


async def test_domains_pages_newest_first_with_cursors(api: GraphQLClient) -> None:
    names = ["first", "second", "third"]
    for name in names:
        await create_domain(api, "pager", name)
    query = """query($first: Int, $after: String) {
      domains(first: $first, after: $after) {
        edges { cursor node { name } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    }"""
    page1 = (await api.data(query, {"first": 2}, user="pager"))["domains"]
    assert [e["node"]["name"] for e in page1["edges"]] == ["third", "second"]
    assert page1["pageInfo"]["hasNextPage"] is True
    assert page1["pageInfo"]["hasPreviousPage"] is False
    after = page1["pageInfo"]["endCursor"]
    page2 = (await api.data(query, {"first": 2, "after": after}, user="pager"))["domains"]
    assert [e["node"]["name"] for e in page2["edges"]] == ["first"]
    assert page2["pageInfo"]["hasNextPage"] is False


async def test_domains_refuses_oversized_pages_and_foreign_cursors(api: GraphQLClient) -> None:
    query = """query($first: Int, $after: String) {
      domains(first: $first, after: $after) { edges { cursor } }
    }"""
    too_big = await api.execute(query, {"first": api.settings.max_page_size + 1}, user="pager")
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Far past the page size, the query's estimated cost refuses it before the page size does.
    huge = await api.execute(query, {"first": 10_000}, user="pager")
    assert huge["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    bogus = await api.execute(query, {"first": 1, "after": "not-a-cursor"}, user="pager")
    assert bogus["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
