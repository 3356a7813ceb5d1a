"""Another user's ids behave exactly like ids that do not exist, for every root field and every
node type; a viewer reads everything and changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from strawberry.relay import GlobalID

from heysh.local.users import user_id_for
from heysh.schema import build_schema
from heysh.services import Services
from tests.support.documents import active_domain, add_member, raw_id, ready_document
from tests.support.graphql import GraphQLClient
from tests.support.query_count import StatementCounter

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

OWNER, VIEWER, STRANGER = "olive-owner", "vic-viewer", "stan-outsider"
ERROR = "... on UserError { code message field }"


@dataclass(frozen=True)
class Ids:
    Domain: str
    Document: str
    Chunk: str
    Entity: str
    OtherEntity: str
    Relationship: str
    WorkflowRun: str


IDS = """
query($id: ID!) { document(id: $id) { lastRun { id }
  chunks(first: 1) { edges { node { id } } }
  entities(first: 50) { edges { node { id relationships(first: 1) { edges { node { id } } } } } }
} }
"""


@pytest.fixture(scope="module")
async def theirs(api: GraphQLClient) -> Ids:
    domain = await active_domain(api, OWNER, "Owner's private domain")
    document = (await ready_document(api, OWNER, domain, "curie.md"))["id"]
    await add_member(api, OWNER, domain, VIEWER, "VIEWER")
    found = (await api.data(IDS, {"id": document}, user=OWNER))["document"]
    entities = [e["node"] for e in found["entities"]["edges"]]
    related = [e for e in entities if e["relationships"]["edges"]]
    return Ids(
        Domain=domain,
        Document=document,
        Chunk=found["chunks"]["edges"][0]["node"]["id"],
        Entity=related[0]["id"],
        OtherEntity=next(e["id"] for e in entities if e["id"] != related[0]["id"]),
        Relationship=related[0]["relationships"]["edges"][0]["node"]["id"],
        WorkflowRun=found["lastRun"]["id"],
    )


def unknown() -> Ids:
    def new(type_name: str) -> str:
        return str(GlobalID(type_name, str(uuid.uuid4())))

    return Ids(
        Domain=new("Domain"),
        Document=new("Document"),
        Chunk=new("Chunk"),
        Entity=new("Entity"),
        OtherEntity=new("Entity"),
        Relationship=new("Relationship"),
        WorkflowRun=str(GlobalID("WorkflowRun", f"process-document-{uuid.uuid4()}")),
    )


# Root field -> (operation, variables from a set of ids). Reads first, then mutations.
READS: dict[str, tuple[str, Any]] = {
    "node": (
        "query($id: ID!) { node(id: $id) { id __typename } }",
        lambda i: {"id": i.Entity},
    ),
    "domain": ("query($id: ID!) { domain(id: $id) { id name } }", lambda i: {"id": i.Domain}),
    "document": (
        "query($id: ID!) { document(id: $id) { id title } }",
        lambda i: {"id": i.Document},
    ),
    "entity": ("query($id: ID!) { entity(id: $id) { id name } }", lambda i: {"id": i.Entity}),
    "workflowRun": (
        "query($id: ID!) { workflowRun(id: $id) { id kind } }",
        lambda i: {"id": i.WorkflowRun},
    ),
    "neighborhood": (
        "query($id: ID!) { neighborhood(entityId: $id, depth: 2) { nodes { id } truncated } }",
        lambda i: {"id": i.Entity},
    ),
    "path": (
        "query($a: ID!, $b: ID!) { path(fromEntityId: $a, toEntityId: $b) { length } }",
        lambda i: {"a": i.Entity, "b": i.OtherEntity},
    ),
    "search": (
        'query($id: ID!) { search(domainId: $id, query: "radium", mode: HYBRID) {'
        " hits { score chunk { id } } } }",
        lambda i: {"id": i.Domain},
    ),
}
MUTATIONS: dict[str, tuple[str, Any]] = {
    "addDocument": (
        'mutation($id: ID!) { addDocument(input: {domainId: $id, title: "t", content: "x"})'
        f" {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Domain},
    ),
    "reprocessDocument": (
        f"mutation($id: ID!) {{ reprocessDocument(id: $id) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Document},
    ),
    "deleteDocument": (
        f"mutation($id: ID!) {{ deleteDocument(id: $id) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Document},
    ),
    "cancelWorkflowRun": (
        f"mutation($id: ID!) {{ cancelWorkflowRun(id: $id) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.WorkflowRun},
    ),
    "deleteDomain": (
        f"mutation($id: ID!) {{ deleteDomain(id: $id) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Domain},
    ),
    "rebuildGraph": (
        f"mutation($id: ID!) {{ rebuildGraph(domainId: $id) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Domain},
    ),
    "addDomainMember": (
        "mutation($id: ID!, $user: ID!) { addDomainMember(input: {domainId: $id, userId: $user,"
        f" role: OWNER}}) {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Domain, "user": user_id_for(STRANGER)},
    ),
    "removeDomainMember": (
        "mutation($id: ID!, $user: ID!) { removeDomainMember(domainId: $id, userId: $user)"
        f" {{ __typename {ERROR} }} }}",
        lambda i: {"id": i.Domain, "user": user_id_for(OWNER)},
    ),
}
NODE = "query($id: ID!) { node(id: $id) { id __typename } }"
# Roots that take no id of anyone else's (the caller's own lists, creating a new domain).
NOT_ADDRESSED_BY_ID = {"viewer", "domains", "createDomain"}


def test_the_sweep_covers_every_root_field() -> None:
    schema = build_schema()._schema
    roots = {*schema.query_type.fields, *schema.mutation_type.fields}  # type: ignore[union-attr]
    assert roots - NOT_ADDRESSED_BY_ID == set(READS) | set(MUTATIONS)


async def test_another_users_ids_answer_exactly_like_unknown_ids_on_every_root(
    api: GraphQLClient, theirs: Ids, statements: StatementCounter
) -> None:
    random_ids = unknown()
    for name, (operation, variables) in {**READS, **MUTATIONS}.items():
        with statements.counting() as stranger_sent:
            stranger = await api.execute(operation, variables(theirs), user=STRANGER)
        with statements.counting() as nobody_sent:
            nobody = await api.execute(operation, variables(random_ids), user=STRANGER)
        assert stranger == nobody, name
        assert "errors" not in stranger, (name, stranger)
        # Not even the work done tells them apart: the same statements reach the stores.
        assert stranger_sent == nobody_sent, name


async def test_every_node_type_hides_another_users_objects_like_unknown_ones(
    api: GraphQLClient, theirs: Ids, statements: StatementCounter
) -> None:
    random_ids = unknown()
    for type_name in ("Domain", "Document", "Chunk", "Entity", "Relationship", "WorkflowRun"):
        mine = await api.data(NODE, {"id": getattr(theirs, type_name)}, user=OWNER)
        assert mine["node"]["__typename"] == type_name  # the id is real...
        with statements.counting() as stranger_sent:
            stranger = await api.execute(NODE, {"id": getattr(theirs, type_name)}, user=STRANGER)
        with statements.counting() as nobody_sent:
            nobody = await api.execute(NODE, {"id": getattr(random_ids, type_name)}, user=STRANGER)
        assert stranger == nobody == {"data": {"node": None}}, type_name  # ...and hidden
        assert stranger_sent == nobody_sent, type_name


async def test_a_viewer_reads_every_root_and_node_but_every_change_is_forbidden(
    api: GraphQLClient, services: Services, theirs: Ids
) -> None:
    for name, (operation, variables) in READS.items():
        body = await api.data(operation, variables(theirs), user=VIEWER)
        assert body[name] is not None, name
    for type_name in ("Domain", "Document", "Chunk", "Entity", "Relationship", "WorkflowRun"):
        found = await api.data(NODE, {"id": getattr(theirs, type_name)}, user=VIEWER)
        assert found["node"]["__typename"] == type_name

    before = await services.graph.domain_counts(raw_id(theirs.Domain))
    for name, (operation, variables) in MUTATIONS.items():
        result = (await api.data(operation, variables(theirs), user=VIEWER))[name]
        assert result["__typename"] == "UserError", (name, result)
        assert result["code"] == "FORBIDDEN", (name, result)
    assert await services.graph.domain_counts(raw_id(theirs.Domain)) == before
    domain = await api.data(READS["domain"][0], {"id": theirs.Domain}, user=OWNER)
    assert domain["domain"] is not None
