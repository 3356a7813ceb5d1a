"""Membership through the API: owners add, change and remove members; a domain keeps an owner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from heysh.local.users import user_id_for
from tests.support.documents import active_domain, add_document
from tests.support.graphql import GraphQLClient

pytestmark = pytest.mark.integration

ADD = """
mutation($domainId: ID!, $userId: ID!, $role: MemberRole!) {
  addDomainMember(input: {domainId: $domainId, userId: $userId, role: $role}) {
    __typename ... on DomainMemberSuccess { member { user { id } role } }
    ... on UserError { code field message } } }
"""
REMOVE = """
mutation($domainId: ID!, $userId: ID!) { removeDomainMember(domainId: $domainId, userId: $userId) {
  __typename ... on UserError { code field message } } }
"""
MEMBERS = """
query($id: ID!, $first: Int, $after: String) { domain(id: $id) {
  members(first: $first, after: $after) {
    edges { node { user { id } role } } pageInfo { hasNextPage endCursor } } } }
"""
DOMAIN = "query($id: ID!) { domain(id: $id) { id } }"


async def add(api: GraphQLClient, by: str, domain: str, user: str, role: str) -> Any:
    variables = {"domainId": domain, "userId": user_id_for(user), "role": role}
    return (await api.data(ADD, variables, user=by))["addDomainMember"]


async def remove(api: GraphQLClient, by: str, domain: str, user: str) -> Any:
    variables = {"domainId": domain, "userId": user_id_for(user)}
    return (await api.data(REMOVE, variables, user=by))["removeDomainMember"]


async def members(api: GraphQLClient, by: str, domain: str) -> Any:
    found = (await api.data(MEMBERS, {"id": domain, "first": 10}, user=by))["domain"]
    return found and found["members"]


async def test_roles_set_through_the_api_decide_what_members_may_do(api: GraphQLClient) -> None:
    domain = await active_domain(api, "mona", "Members")
    assert (await add(api, "mona", domain, "ed", "EDITOR"))["member"]["role"] == "EDITOR"
    assert (await add(api, "mona", domain, "vic", "VIEWER"))["member"]["role"] == "VIEWER"

    by_editor = await add_document(api, "ed", domain, "t", "Ada Lovelace wrote notes.")
    assert by_editor["__typename"] == "AddDocumentSuccess"
    by_viewer = await add_document(api, "vic", domain, "t", "Grace Hopper wrote code.")
    assert by_viewer["code"] == "FORBIDDEN"
    assert (await api.data(DOMAIN, {"id": domain}, user="vic"))["domain"] is not None

    listed = await members(api, "mona", domain)
    roles = {edge["node"]["user"]["id"]: edge["node"]["role"] for edge in listed["edges"]}
    assert roles == {
        user_id_for("mona"): "OWNER",
        user_id_for("ed"): "EDITOR",
        user_id_for("vic"): "VIEWER",
    }
    assert await members(api, "ed", domain) is None  # only owners see the member list

    # Adding again changes the role; it never duplicates the member.
    assert (await add(api, "mona", domain, "vic", "EDITOR"))["member"]["role"] == "EDITOR"
    assert len((await members(api, "mona", domain))["edges"]) == 3

    assert (await remove(api, "mona", domain, "vic"))["__typename"] == "RemoveDomainMemberSuccess"
    assert (await api.data(DOMAIN, {"id": domain}, user="vic"))["domain"] is None
    again = await remove(api, "mona", domain, "vic")
    assert (again["code"], again["field"]) == ("NOT_FOUND", "userId")


async def test_only_owners_change_members_and_strangers_learn_nothing(
    api: GraphQLClient,
) -> None:
    domain = await active_domain(api, "mona", "Guarded")
    await add(api, "mona", domain, "ed", "EDITOR")
    assert (await add(api, "ed", domain, "eve", "OWNER"))["code"] == "FORBIDDEN"
    assert (await remove(api, "ed", domain, "mona"))["code"] == "FORBIDDEN"
    stranger = await add(api, "stan", domain, "stan", "OWNER")
    unknown = await add(
        api, "stan", "RG9tYWluOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA==", "stan", "OWNER"
    )
    assert stranger == unknown
    assert stranger["code"] == "NOT_FOUND"
    bad = await api.data(
        ADD, {"domainId": domain, "userId": "not-a-uuid", "role": "VIEWER"}, user="mona"
    )
    assert (bad["addDomainMember"]["code"], bad["addDomainMember"]["field"]) == (
        "INVALID_INPUT",
        "userId",
    )


async def test_the_last_owner_can_be_neither_removed_nor_demoted(api: GraphQLClient) -> None:
    domain = await active_domain(api, "mona", "Owned")
    assert (await remove(api, "mona", domain, "mona"))["code"] == "INVALID_INPUT"
    assert (await add(api, "mona", domain, "mona", "EDITOR"))["code"] == "INVALID_INPUT"

    await add(api, "mona", domain, "otto", "OWNER")
    assert (await add(api, "mona", domain, "mona", "EDITOR"))["member"]["role"] == "EDITOR"
    assert (await remove(api, "otto", domain, "mona"))["__typename"] == "RemoveDomainMemberSuccess"
    assert (await remove(api, "otto", domain, "otto"))["code"] == "INVALID_INPUT"


async def test_two_owners_removing_each_other_at_once_leave_one_owner(
    api: GraphQLClient,
) -> None:
    domain = await active_domain(api, "mona", "Duel")
    await add(api, "mona", domain, "otto", "OWNER")
    results = await asyncio.gather(
        remove(api, "mona", domain, "otto"), remove(api, "otto", domain, "mona")
    )
    outcomes = sorted(r["__typename"] for r in results)
    assert outcomes == ["RemoveDomainMemberSuccess", "UserError"], results
    owners = [
        who
        for who in ("mona", "otto")
        if (await api.data(DOMAIN, {"id": domain}, user=who))["domain"] is not None
    ]
    assert len(owners) == 1
    listed = await members(api, owners[0], domain)
    assert [edge["node"]["role"] for edge in listed["edges"]] == ["OWNER"]
